"""Running one writer function at once in 8 threads and 2 spawned processes."""

from __future__ import annotations

import multiprocessing
import threading
import typing as t

THREADS = 8
PROCESSES = 2


def run_writers(target: t.Callable[..., None], log_dir: str, count: int) -> None:
    """Call ``target(log_dir, name, count, barrier)`` in every worker; they start together.

    ``target`` must be importable (a module-level function) for the spawned
    processes. Fails when a process does not exit cleanly.
    """
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(THREADS + PROCESSES)
    processes = [
        spawn.Process(target=target, args=(log_dir, f"p{n}", count, barrier)) for n in range(PROCESSES)
    ]
    threads = [
        threading.Thread(target=target, args=(log_dir, f"t{n}", count, barrier)) for n in range(THREADS)
    ]
    workers: list[multiprocessing.process.BaseProcess | threading.Thread] = [*processes, *threads]
    for worker in workers:
        worker.start()
    for thread in threads:
        thread.join(120)
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0] * PROCESSES
