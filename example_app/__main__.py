"""``python -m example_app``: the example shop with its local SMTP servers, on 127.0.0.1."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import typing as t
from pathlib import Path

from werkzeug.serving import BaseWSGIServer, make_server

from . import DEFAULT_INSTANCE, create_app
from .demo import DemoServers, attach_inbox, seed_accounts

HOST = "127.0.0.1"


def _serve(app: t.Any, port: int, fixed: bool) -> BaseWSGIServer:
    try:
        return make_server(HOST, port, app, threaded=True)
    except OSError as err:
        if err.errno != errno.EADDRINUSE or fixed:
            raise SystemExit(f"Port {port} on {HOST} is in use; start with --port <another port>.") from None
        return make_server(HOST, 0, app, threaded=True)


def _flask_command(instance: Path) -> str:
    """How to run ``flask`` on this site from another terminal: the venv's flask, and the instance if not the default."""
    flask = Path(sys.executable).with_name("flask")
    command = os.path.relpath(flask) if flask.exists() and flask.is_relative_to(Path.cwd()) else "flask"
    prefix = "" if instance == DEFAULT_INSTANCE.resolve() else f"EXAMPLE_APP_INSTANCE={instance} "
    return f"{prefix}{command} --app example_app"


def banner(url: str, servers: DemoServers, instance: Path) -> str:
    secrets = servers.secrets
    lines = [
        f"Example shop: {url}",
        f"  Admin login:   admin@shop.example / {secrets['admin_password']}   (SMTP accounts admin: {url}admin/)",
        f"  Editor login:  editor@shop.example / {secrets['editor_password']}   (may send the newsletter; no admin rights)",
        f"  Demo inbox:    {url}inbox   (what the local SMTP servers received, and through which account)",
        "  Local SMTP servers:",
    ]
    for demo in servers.servers.values():
        lines.append(f"    {demo.title:<26} {demo.server.host}:{demo.server.port}  {demo.security}")
    lines += [
        f"  Instance folder: {instance} (database, and the demo's generated encryption key:",
        "    fine for a demo, never for a real site)",
        f"  Command line:  {_flask_command(instance)} smtp-accounts list",
        "Press Ctrl+C to stop.",
    ]
    return "\n".join(lines)


def _interrupt(signum: int, frame: t.Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m example_app", description=__doc__)
    parser.add_argument(
        "--port", type=int, default=None, help="HTTP port on 127.0.0.1 (default 5000, or a free one)"
    )
    parser.add_argument(
        "--instance",
        type=Path,
        default=None,
        help="instance folder (default: $EXAMPLE_APP_INSTANCE or example_app/instance)",
    )
    args = parser.parse_args(argv)
    instance = (args.instance or Path(os.environ.get("EXAMPLE_APP_INSTANCE") or DEFAULT_INSTANCE)).resolve()

    # aiosmtpd logs a deprecation of its own internals on every login; a visitor cannot act on that.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    # SIGTERM stops the demo like Ctrl+C, so that the SMTP servers are shut down too.
    signal.signal(signal.SIGTERM, _interrupt)
    with DemoServers(instance) as servers:
        app = create_app(servers.config(), instance_path=instance)
        attach_inbox(app, servers)
        seed_accounts(app, servers)
        http = _serve(app, 5000 if args.port is None else args.port, fixed=args.port is not None)
        print(banner(f"http://{HOST}:{http.server_port}/", servers, instance), flush=True)
        try:
            http.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            http.server_close()
    print("Stopped.", file=sys.stderr)


if __name__ == "__main__":
    main()
