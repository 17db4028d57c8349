"""A webhook receiver on 127.0.0.1: a real HTTP server in a thread that keeps what it was posted."""

from __future__ import annotations

import http.server
import json
import queue
import threading
import typing as t
from dataclasses import dataclass
from types import TracebackType


@dataclass(frozen=True)
class Post:
    path: str
    content_type: str
    body: t.Any


class WebhookReceiver:
    """Answers every POST with :attr:`status` and queues it; :meth:`next` waits for one, with a deadline."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.posts: queue.Queue[Post] = queue.Queue()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                receiver.posts.put(Post(self.path, self.headers.get("Content-Type", ""), json.loads(raw)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: t.Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )

    def url(self, path: str = "/hooks/T000/B000/s3cret-token") -> str:
        """A URL on this receiver whose path is the secret part, like Slack's."""
        return f"http://127.0.0.1:{self._server.server_port}{path}"

    def next(self, timeout: float = 10.0) -> Post:
        """The next post; fails the test if none comes within ``timeout`` seconds."""
        try:
            return self.posts.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no webhook post within {timeout} s") from None

    def received(self) -> list[Post]:
        """What has been posted so far (for a test that has already waited for what it expects)."""
        found = []
        while not self.posts.empty():
            found.append(self.posts.get_nowait())
        return found

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
