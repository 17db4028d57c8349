"""A relay that puts a real network's latency between the sender and the sink.

On loopback an SMTP dialogue costs microseconds, so a benchmark there
weighs the sender's own work and hides what a site pays against a real
server, where every command waits a round trip. This relay listens on
127.0.0.1, forwards every TCP connection to the sink, and holds each chunk
for a one-way delay before passing it on, in both directions (5 ms each way
by default: a server 10 ms away). Bandwidth is not limited, and chunks keep
their order.

Run as a script, it prints its port on the first line of stdout and stops
when its stdin closes, so it never outlives the benchmark that started it::

    python benchmarks/relay.py SINK_PORT [--delay-ms 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os

from sink import Sink, serve_until_stdin_closes, start_script

HOST = "127.0.0.1"
#: One-way delay added in each direction, in milliseconds (10 ms round trip).
DEFAULT_DELAY_MS = 5.0
CHUNK = 64 * 1024


def start_relay(target_port: int, delay_ms: float = DEFAULT_DELAY_MS) -> Sink:
    """Start the relay in a process of its own, in front of ``127.0.0.1:target_port``."""
    return start_script(
        os.path.abspath(__file__),
        [str(target_port), "--delay-ms", str(delay_ms)],
        f"latency relay ({delay_ms:g} ms each way)",
    )


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk leaving ``delay`` seconds after it arrived."""
    loop = asyncio.get_running_loop()
    due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def receive() -> None:
        while True:
            try:
                chunk = await reader.read(CHUNK)
            except OSError:
                chunk = b""
            await due.put((loop.time() + delay, chunk))
            if not chunk:
                return

    async def deliver() -> None:
        while True:
            at, chunk = await due.get()
            wait = at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                if not chunk:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(chunk)
                await writer.drain()
            except OSError:
                return

    await asyncio.gather(receive(), deliver())


async def _serve_connection(
    client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, target_port: int, delay: float
) -> None:
    try:
        server_reader, server_writer = await asyncio.wait_for(asyncio.open_connection(HOST, target_port), 10)
    except (OSError, TimeoutError):
        client_writer.close()
        return
    try:
        await asyncio.gather(
            _forward(client_reader, server_writer, delay),
            _forward(server_reader, client_writer, delay),
        )
    except asyncio.CancelledError:
        pass  # the relay is stopping with this connection still open
    finally:
        for writer in (client_writer, server_writer):
            writer.close()


def _serve(target_port: int, delay_ms: float) -> None:
    delay = delay_ms / 1000

    # The relay holds its connections' tasks itself: asyncio's streams let go of theirs when the
    # client closes, while the last delayed chunks are still on their way.
    connections: set[asyncio.Task[None]] = set()

    def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(_serve_connection(reader, writer, target_port, delay))
        connections.add(task)
        task.add_done_callback(connections.discard)

    async def main() -> None:
        server = await asyncio.start_server(accepted, HOST, 0, backlog=256)
        await serve_until_stdin_closes(server)

    asyncio.run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target_port", type=int, help="the sink's port on 127.0.0.1")
    parser.add_argument(
        "--delay-ms", type=float, default=DEFAULT_DELAY_MS, help="one-way delay, each direction"
    )
    args = parser.parse_args()
    _serve(args.target_port, args.delay_ms)
