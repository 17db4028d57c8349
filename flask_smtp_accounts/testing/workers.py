"""A real Redis and real Celery worker processes, for tests and benchmarks of the Celery tasks.

Needs the ``celery`` extra and Debian's ``redis-server``.

* :class:`RedisServer`: ``redis-server`` on a free port of 127.0.0.1,
  nothing written to disk (``--save '' --appendonly no``), stopped by
  :meth:`RedisServer.stop`.
* :class:`CeleryWorker`: ``celery -A MODULE worker`` in a process group of its
  own (as on a machine of its own: its pool processes included), its output
  kept in a file; :meth:`CeleryWorker.kill` is ``kill -9`` of the whole group.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import typing as t
from collections.abc import Callable, Mapping

from .servers import HOST, free_port

#: Seconds a started server or worker has to answer, and a stopped one to end.
DEADLINE_S = 60


def wait_until(
    condition: Callable[[], bool], what: str, timeout: float, report: Callable[[], str] = str
) -> None:
    """Poll ``condition`` until it holds; AssertionError naming ``what`` (and ``report()``) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting after {timeout:g}s: {what}\n{report()}")
        time.sleep(0.05)


def redis_server_path() -> str | None:
    """Debian's ``redis-server``, if installed."""
    return shutil.which("redis-server")


class RedisServer:
    """``redis-server`` on 127.0.0.1, started at once; its log is in ``workdir``."""

    def __init__(self, workdir: pathlib.Path) -> None:
        import redis

        path = redis_server_path()
        if path is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        self.log = workdir / "redis.log"
        self.process = subprocess.Popen(
            [
                path,
                "--bind",
                HOST,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                "--logfile",
                str(self.log),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis(host=HOST, port=self.port, socket_timeout=5)
        try:
            wait_until(self._answers, f"redis-server on port {self.port}", DEADLINE_S, self.log_text)
        except BaseException:
            self.stop()
            raise

    def _answers(self) -> bool:
        import redis

        if self.process.poll() is not None:
            raise AssertionError(f"redis-server ended at start: {self.log_text()}")
        try:
            return bool(self.client.ping())
        except redis.ConnectionError:
            return False

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def flush(self) -> None:
        """Forget every message: the next test starts with an empty broker."""
        self.client.flushall()

    def stop(self) -> None:
        self.client.close()
        _end(self.process, group=False)


class CeleryWorker:
    """``celery -A app_module worker`` with ``pool`` and ``concurrency``, started at once.

    ``env`` is added to this process's environment; ``path`` goes first on
    the worker's ``PYTHONPATH`` (where ``app_module`` is). Its output goes
    to ``logdir/worker-NAME.log``.
    """

    def __init__(
        self,
        app_module: str,
        name: str,
        *,
        pool: str,
        concurrency: int,
        logdir: pathlib.Path,
        path: t.Sequence[pathlib.Path] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log = logdir / f"worker-{name}.log"
        self._output = self.log.open("wb")
        python_path = [str(p) for p in path] + [
            p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
        ]
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app_module,
                "worker",
                "--hostname",
                f"{name}@%h",
                "--pool",
                pool,
                "--concurrency",
                str(concurrency),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
            ],
            env={**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(python_path)},
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = DEADLINE_S) -> None:
        """Until the worker says it is ready (it then takes tasks)."""

        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} ended at start:\n{self.output()}")
            return " ready." in self.log.read_text(errors="replace")

        wait_until(ready, f"worker {self.name} ready", timeout, self.output)

    def pids(self) -> set[int]:
        """The worker's processes: its main process and its pool's."""
        if self.process.poll() is not None:
            return set()
        found = set()
        for entry in pathlib.Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == self.process.pid:
                        found.add(int(entry.name))
                except ProcessLookupError:
                    continue
        return found

    def kill(self) -> None:
        """``kill -9`` of the worker and its pool: the machine it runs on is gone."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(DEADLINE_S)

    def stop(self) -> None:
        """A warm shutdown (SIGTERM: running tasks finish); ``kill -9`` of the group after the deadline."""
        _end(self.process, group=True)
        self._output.close()

    def output(self, last: int = 6000) -> str:
        """The end of the worker's log, for a failure report."""
        return f"--- worker {self.name} ({self.log}) ---\n{self.log.read_text(errors='replace')[-last:]}"


def _end(process: subprocess.Popen[bytes], *, group: bool) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(DEADLINE_S)
        except subprocess.TimeoutExpired:
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
            process.wait()
