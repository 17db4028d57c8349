"""``flask smtp-accounts ...``: the command line, a thin layer over the Python API.

Every command calls one method of :class:`~flask_smtp_accounts.SMTPAccounts`
and prints its answer; the logic lives there, once. Errors the extension
raises on purpose become one line on stderr and exit status 1, never a
traceback. Passwords (and OAuth2 client secrets and refresh tokens) are
read from a hidden prompt or from an environment variable named by
``--password-env`` (``--client-secret-env``, ``--refresh-token-env``),
never from an argument, so that they stay out of shell history and ``ps``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
import typing as t

import click
from flask import current_app
from flask.cli import AppGroup

from .alert_channels import KINDS as ALERT_KINDS
from .alert_formats import FORMAT_CHOICES
from .errors import DeliveryError, SMTPAccountsError
from .hints import hint_for
from .labels import account_label
from .log_files import KINDS as LOG_KINDS
from .message_log import INTERRUPTED, STATUSES
from .oauth2.providers import FLOW_CHOICES, PROVIDER_CHOICES
from .presets import PRESET_KEYS, get_preset, with_preset
from .printable import printable, printable_lines
from .quotas import is_limited, today_figures
from .settings import SETTING_NAMES
from .validation import AUTH_CHOICES, OVER_LIMIT_CHOICES, SECURITY_CHOICES

if t.TYPE_CHECKING:
    from .check import CheckResult
    from .extension import SMTPAccounts
    from .outbox import DeliveryReport


class _CommandGroup(AppGroup):
    """A command group that turns the extension's errors into one line and exit status 1."""

    def invoke(self, ctx: click.Context) -> t.Any:
        try:
            return super().invoke(ctx)
        except (KeyError, IndexError):
            raise
        except (SMTPAccountsError, LookupError) as err:
            result = getattr(err, "result", None)  # AccountCheckFailed carries the check's result
            hint = getattr(err, "hint", None) or getattr(result, "hint", None) or _hint_of(err)
            raise click.ClickException(_with_hint(str(err), hint)) from None

    def group(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        kwargs.setdefault("cls", _CommandGroup)
        return super().group(*args, **kwargs)


def _hint_of(err: BaseException) -> str | None:
    """The fix-it hint of a send's error, worked out here where it is shown (sending computes none)."""
    if not isinstance(err, DeliveryError):
        return None
    state = current_app.extensions.get("smtp_accounts")
    account = state.directory.account(err.account_id) if state is not None and err.account_id else None
    return hint_for(err, err.cause, account)


#: The blanks that separate the words of a message; every other control character gets escaped.
_BLANKS = re.compile(r"[ \t\r\n]+")


def _one_line(text: str) -> str:
    """A message on one line, a server's words in it escaped so that they cannot steer the terminal."""
    return printable(" ".join(_BLANKS.split(text.strip())))


def _with_hint(error: str, hint: str | None) -> str:
    """The error on one line, and the fix-it hint on a line of its own: the two never run together."""
    return _one_line(error) + (f"\nHint: {_one_line(hint)}" if hint else "")


def _ext() -> SMTPAccounts:
    try:
        state = current_app.extensions["smtp_accounts"]
    except KeyError:
        raise click.ClickException("SMTPAccounts is not initialised on this app.") from None
    return t.cast("SMTPAccounts", state.ext)


def _table(headers: t.Sequence[str], rows: t.Sequence[t.Sequence[t.Any]]) -> None:
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


smtp_accounts_cli = _CommandGroup(
    "smtp-accounts", help="Manage the SMTP accounts that carry the site's mail."
)


# --- accounts -----------------------------------------------------------------


@smtp_accounts_cli.command("list")
def list_accounts() -> None:
    """List the accounts, like the admin list."""
    ext = _ext()
    accounts = ext.list_accounts()
    if not accounts:
        click.echo("No SMTP accounts yet. Add one with: flask smtp-accounts add --help")
        return
    usage = ext.quota_usage(a.id for a in accounts if is_limited(a))
    _table(
        (
            "ID",
            "Active",
            "Sender name",
            "Email",
            "Server",
            "Port",
            "Security",
            "Auth",
            "Login",
            "Backups",
            "Today",
        ),
        [
            (
                a.id,
                _yes_no(a.active),
                a.sender_name or "-",
                a.sender_email,
                a.host,
                a.port,
                a.security,
                a.auth,
                a.login or "-",
                ",".join(str(i) for i in a.backup_ids) or "-",
                _today(a, usage.get(a.id)),
            )
            for a in accounts
        ],
    )


def _today(account: t.Any, usage: t.Any) -> str:
    """The list's "Today" cell: letters (and recipients) of the last 24 hours against the daily limits."""
    figures = today_figures(account, usage)
    if figures is None:
        return "-"
    letters, recipients = figures
    return f"{letters}, recipients {recipients}" if recipients else letters


def _account_options(for_edit: bool) -> t.Callable[[t.Callable[..., t.Any]], t.Callable[..., t.Any]]:
    """The options naming account fields; on ``edit`` every one is optional."""

    def decorate(f: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        options = [
            click.option(
                "--sender-email", required=not for_edit, help="The From address this account carries."
            ),
            click.option("--sender-name", help="Name put in letters that have none of their own."),
            click.option(
                "--preset",
                type=click.Choice(PRESET_KEYS),
                help="A provider's host, port, security and authorization; options given override them.",
            ),
            click.option(
                "--region", help="With --preset amazon-ses or zoho: the region (default: the first listed)."
            ),
            click.option("--host", help="Mail server address (required without --preset)."),
            click.option("--port", type=click.IntRange(1, 65535), help="Mail server port (default 587)."),
            click.option(
                "--security",
                type=click.Choice(SECURITY_CHOICES),
                help="none, ssl (implicit TLS) or starttls (default).",
            ),
            click.option(
                "--auth",
                type=click.Choice(AUTH_CHOICES),
                help="login (default), none, or oauth2 (see the --oauth-* options).",
            ),
            click.option("--login", help="Login on the server."),
            click.option(
                "--active/--inactive", default=None, help="Whether the account takes part in routing."
            ),
            click.option(
                "--verify-tls/--no-verify-tls",
                default=None,
                help="Verify the server's certificate (default). Turn off only for a server you trust.",
            ),
            click.option(
                "--limit-per-minute",
                type=int,
                metavar="N",
                help="At most N letters in any 60 seconds, across every process (0: no limit).",
            ),
            click.option(
                "--limit-per-hour", type=int, metavar="N", help="At most N letters in any hour (0: no limit)."
            ),
            click.option(
                "--limit-per-day",
                type=int,
                metavar="N",
                help="At most N letters in any 24 hours (0: no limit).",
            ),
            click.option(
                "--recipient-limit-per-day",
                type=int,
                metavar="N",
                help="At most N envelope recipients in any 24 hours (0: no limit).",
            ),
            click.option(
                "--over-limit",
                type=click.Choice(OVER_LIMIT_CHOICES),
                help="At a limit, a queued letter waits for the next slot (wait, default) or goes through the backups.",
            ),
            click.option(
                "--pipelining/--no-pipelining",
                default=None,
                help="Send MAIL, RCPT and DATA in one write when the server offers PIPELINING (default).",
            ),
            click.option(
                "--backup-ids",
                metavar="IDS",
                help='Accounts to try, in order, when this one fails, e.g. "3,5" ("" for none).',
            ),
            click.option(
                "--max-connections",
                type=click.IntRange(0, 100),
                help="Most connections open to the server at once, across all workers (0: no limit).",
            ),
            click.option(
                "--password-env",
                metavar="NAME",
                help="Read the password from this environment variable instead of a prompt.",
            ),
            click.option(
                "--oauth-provider",
                type=click.Choice(PROVIDER_CHOICES),
                help="With --auth oauth2: microsoft, google or custom (a token URL of your own).",
            ),
            click.option(
                "--oauth-flow",
                type=click.Choice(FLOW_CHOICES),
                help="app (Microsoft client credentials) or delegated (a refresh token; default).",
            ),
            click.option("--oauth-tenant", help="Microsoft directory (tenant) id or domain."),
            click.option("--oauth-client-id", help="The app's client (application) id."),
            click.option("--oauth-token-url", help="Token endpoint of a custom provider."),
            click.option(
                "--oauth-authorize-url", help="Authorization endpoint of a custom provider (for signing in)."
            ),
            click.option("--oauth-scope", help="Scope of the tokens (default: the provider's for the flow)."),
            click.option(
                "--client-secret-env",
                metavar="NAME",
                help="Read the OAuth2 client secret from this environment variable instead of a prompt.",
            ),
            click.option(
                "--refresh-token-env",
                metavar="NAME",
                help="Read the OAuth2 refresh token from this environment variable instead of a prompt.",
            ),
            click.option(
                "--check/--no-check",
                default=True,
                show_default=True,
                help="Connect and log in before saving; a failed check saves nothing.",
            ),
        ]
        if for_edit:
            options.append(
                click.option(
                    "--ask-password",
                    is_flag=True,
                    help="Prompt for a new password (hidden). Without it the stored one is kept.",
                )
            )
            options.append(
                click.option(
                    "--ask-client-secret",
                    is_flag=True,
                    help="Prompt for a new OAuth2 client secret (hidden).",
                )
            )
            options.append(
                click.option(
                    "--ask-refresh-token",
                    is_flag=True,
                    help="Prompt for a new OAuth2 refresh token (hidden).",
                )
            )
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def _fields(**given: t.Any) -> dict[str, t.Any]:
    return {name: value for name, value in given.items() if value is not None}


def _password(env_name: str | None, ask: bool, label: str = "Password") -> str | None:
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise click.ClickException(f"The environment variable {env_name} is not set or empty.")
        return value
    if ask:
        return t.cast(str, click.prompt(label, hide_input=True))
    return None


def _oauth2_secrets(given: dict[str, t.Any], *, ask_secret: bool, ask_token: bool) -> dict[str, t.Any]:
    """The OAuth2 secrets, from the environment variables named or hidden prompts; never from arguments."""
    secrets = {
        "oauth_client_secret": _password(given.pop("client_secret_env"), ask_secret, "OAuth2 client secret"),
        "oauth_refresh_token": _password(given.pop("refresh_token_env"), ask_token, "OAuth2 refresh token"),
    }
    return {name: value for name, value in secrets.items() if value}


def _describe(account: t.Any) -> str:
    name = account_label(account.sender_name, account.sender_email)
    return f"account {account.id}: {name} via {account.host}:{account.port} ({account.security})"


def _saved(action: str, account: t.Any, check: bool) -> None:
    click.echo(f"{action} {_describe(account)}" + ("" if check else " (not checked)"))


@smtp_accounts_cli.command("add")
@_account_options(for_edit=False)
def add_account(password_env: str | None, check: bool, **given: t.Any) -> None:
    """Add an account; it is checked against its server first.

    The password is asked for (hidden) when the account logs in, unless
    --password-env names an environment variable that holds it.
    """
    oauth2 = given.get("auth") == "oauth2"
    delegated = oauth2 and given.get("oauth_flow") in (None, "delegated")
    secrets = _oauth2_secrets(given, ask_secret=oauth2, ask_token=delegated)
    preset, region = given.pop("preset"), given.pop("region")
    fields = with_preset(preset, _fields(**given), region)
    if not fields.get("host"):
        raise click.UsageError("Missing option '--host' (or a --preset that sets it).")
    _preset_notes(preset)
    needs_password = fields.get("auth", "login") == "login"
    password = _password(password_env, ask=needs_password)
    account = _ext().add_account(password=password, check=check, **fields, **secrets)
    _saved("Added", account, check)


def _preset_notes(key: str | None) -> None:
    """What the provider documents about the preset: who logs in, its limits, its deadline."""
    if not key:
        return
    preset = get_preset(key)
    click.echo(f"{preset.name}: login: {preset.login_hint} Limits: {preset.limits}")
    if preset.secrets_url:
        click.echo(f"App passwords, API keys or OAuth2: {preset.secrets_url}")
    if preset.deadline:
        click.echo(f"Note: {preset.deadline}")


@smtp_accounts_cli.command("edit")
@click.argument("account_id", type=int)
@_account_options(for_edit=True)
def edit_account(
    account_id: int,
    password_env: str | None,
    ask_password: bool,
    ask_client_secret: bool,
    ask_refresh_token: bool,
    check: bool,
    **given: t.Any,
) -> None:
    """Change an account; options left out keep their values, and so do the password and OAuth2 secrets."""
    ext = _ext()
    ext.get_account(account_id)
    secrets = _oauth2_secrets(given, ask_secret=ask_client_secret, ask_token=ask_refresh_token)
    preset, region = given.pop("preset"), given.pop("region")
    fields = with_preset(preset, _fields(**given), region)
    _preset_notes(preset)
    password = _password(password_env, ask=ask_password)
    account = ext.update_account(account_id, password=password, check=check, **fields, **secrets)
    _saved("Saved", account, check)


@smtp_accounts_cli.command("delete")
@click.argument("account_id", type=int)
@click.confirmation_option(prompt="Delete this SMTP account?")
def delete_account(account_id: int) -> None:
    """Delete an account."""
    ext = _ext()
    description = _describe(ext.get_account(account_id))
    ext.delete_account(account_id)
    click.echo(f"Deleted {description}")


def _report(result: CheckResult) -> None:
    if result.ok:
        click.echo(f"{printable(result.message)} ({result.elapsed_s:.2f} s)")
        return
    raise click.ClickException(_with_hint(result.message, result.hint))


@smtp_accounts_cli.command("check")
@click.argument("account_id", type=int)
@click.option(
    "--send-test/--no-send-test",
    default=None,
    help="Also send a test letter (default: the send_test_on_check setting).",
)
def check_account(account_id: int, send_test: bool | None) -> None:
    """Connect to an account's server and log in; exit status 1 when that fails."""
    ext = _ext()
    _report(ext.check_account(ext.get_account(account_id), send_test=send_test))


@smtp_accounts_cli.command("test-letter")
@click.argument("account_id", type=int)
@click.option("--to", "recipient", metavar="ADDRESS", help="Recipient (default: the test_recipient setting).")
def send_test_letter(account_id: int, recipient: str | None) -> None:
    """Send a test letter through an account."""
    ext = _ext()
    _report(ext.send_test_letter(ext.get_account(account_id), recipient))


@smtp_accounts_cli.command("route")
@click.argument("sender")
@click.option("--bulk", is_flag=True, help="Route it as a newsletter (bulk) letter.")
def preview_route(sender: str, bulk: bool) -> None:
    """Show which account a letter from SENDER would go through, and why.

    SENDER is an address or "Display Name <address>". Nothing is sent.
    """
    choice = _ext().choose_account(sender, bulk=True if bulk else None)
    if choice.account is None:
        click.echo("Flask-Mail's own MAIL_* settings")
    else:
        click.echo(_describe(choice.account))
    click.echo(f"rule: {choice.reason}")
    if choice.candidates:
        click.echo("candidates: " + ", ".join(str(i) for i in choice.candidates))


# --- logs -----------------------------------------------------------------------


@smtp_accounts_cli.group("logs")
def logs_cli() -> None:
    """Show, tail and clear the per-account SMTP logs."""


_KIND = click.Choice(LOG_KINDS)
#: How much of a log one read returns; ``show`` reads on until the end.
_CHUNK = 65536


@logs_cli.command("list")
def list_logs() -> None:
    """List the logs: account, kind, file, size and last write (UTC)."""
    logs = _ext().list_logs()
    if not logs:
        click.echo("No logs yet.")
        return
    _table(
        ("Account", "Kind", "Mailbox", "File", "Size", "Modified (UTC)"),
        [
            (log.account_id, log.kind, log.label, log.filename, log.size, f"{log.modified:%Y-%m-%d %H:%M:%S}")
            for log in logs
        ],
    )


@logs_cli.command("show")
@click.argument("account_id", type=int)
@click.argument("kind", type=_KIND)
def show_log(account_id: int, kind: str) -> None:
    """Print a whole log (ACCOUNT_ID 0: checks of accounts not saved yet)."""
    ext = _ext()
    offset = 0
    while True:
        chunk = ext.read_log(account_id, kind, offset, _CHUNK)
        click.echo(printable_lines(chunk.text), nl=False)
        if chunk.end >= chunk.size or chunk.end == offset:
            break
        offset = chunk.end


@logs_cli.command("tail")
@click.argument("account_id", type=int)
@click.argument("kind", type=_KIND)
@click.option(
    "-n",
    "--lines",
    "count",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many of the last lines to print.",
)
def tail_log(account_id: int, kind: str, count: int) -> None:
    """Print the last lines of a log."""
    chunk = _ext().read_log(account_id, kind, -_CHUNK, _CHUNK)
    # Lines end at "\n" only: a line separator a server slipped into an old entry starts no line.
    lines = chunk.text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if chunk.offset > 0 and lines:
        lines = lines[1:]  # the first line may be cut
    for line in lines[-count:]:
        click.echo(printable(line))


@logs_cli.command("clear")
@click.argument("account_id", type=int)
@click.argument("kind", type=_KIND, required=False)
def clear_log(account_id: int, kind: str | None) -> None:
    """Delete an account's log of KIND, or both of its logs when KIND is left out."""
    ext = _ext()
    deleted = [k for k in ((kind,) if kind else LOG_KINDS) if ext.delete_log(account_id, k)]
    if not deleted:
        raise click.ClickException(f"Account {account_id} has no {kind or 'send or check'} log.")
    click.echo(f"Deleted the {' and '.join(deleted)} log of account {account_id}.")


# --- keys ---------------------------------------------------------------------


@smtp_accounts_cli.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every stored password with the newest key.

    Put the new key first in SMTP_ACCOUNTS_ENCRYPTION_KEYS, keep the old ones
    after it, run this, then remove the old keys.
    """
    count = _ext().rotate_encryption_key()
    click.echo(f"Re-encrypted {count} password(s) with the newest key; older keys can now be removed.")


# --- settings -----------------------------------------------------------------


@smtp_accounts_cli.group("settings")
def settings_cli() -> None:
    """Show or change the module's settings."""


@settings_cli.command("show")
def show_settings() -> None:
    """Show the settings."""
    settings = _ext().settings
    _table(("Setting", "Value"), [(name, _setting_text(getattr(settings, name))) for name in SETTING_NAMES])


def _setting_text(value: t.Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if value != "" else "-"


@settings_cli.command("set")
@click.argument("changes", nargs=-1, required=True, metavar="NAME=VALUE...")
def set_settings(changes: tuple[str, ...]) -> None:
    """Change settings, e.g. ``set enabled=true timeout_s=20``; all or nothing."""
    parsed: dict[str, str] = {}
    for change in changes:
        name, sep, value = change.partition("=")
        if not sep:
            raise click.UsageError(f"{change!r} is not NAME=VALUE; settings: {', '.join(SETTING_NAMES)}")
        parsed[name.strip()] = value.strip()
    settings = _ext().update_settings(**parsed)
    for name in parsed:
        click.echo(f"{name} = {_setting_text(getattr(settings, name))}")


# --- message queue --------------------------------------------------------------


@smtp_accounts_cli.command("retry")
@click.option("--limit", type=int, default=None, help="Send at most this many queued letters.")
def retry_queue(limit: int | None) -> None:
    """Send the queued letters that are due (run it from cron); also prunes old message log rows."""
    click.echo(f"Retry run: {_ext().retry_queue(limit=limit)}.")


# --- the outbox -------------------------------------------------------------------

#: Seconds ``deliver --forever`` waits before looking again when nothing was due.
IDLE_S = 2.0


def _progress(report: DeliveryReport) -> str:
    rate = report.per_second
    if not report.left:
        left = "done"
    elif rate > 0:
        left = f"about {report.left / rate:.0f} s left"
    else:
        left = "time left unknown"
    return (
        f"sent {report.sent} / failed {report.failed} / left {report.left}"
        f" ({report.requeued} back in the queue), {rate:.1f} letters/s, {left}"
    )


@contextlib.contextmanager
def _stop_on_sigterm() -> t.Iterator[None]:
    """SIGTERM (``kill``, a service manager's stop) stops a drain as Ctrl+C does, not mid-letter.

    Python's own SIGTERM ends the process at once, leaving its claims to
    wait out their lease; as a ``KeyboardInterrupt`` the letters being sent
    are finished and the rest go back to the queue. Only the main thread
    may set a handler; elsewhere SIGTERM keeps its meaning.
    """

    def interrupt(signum: int, frame: t.Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@smtp_accounts_cli.command("deliver")
@click.option(
    "--connections", type=int, default=8, show_default=True, help="Connections at once, 1 to 100 (threads)."
)
@click.option(
    "--limit", type=int, default=None, help="Send at most this many letters (per round with --forever)."
)
@click.option(
    "--forever",
    is_flag=True,
    help="Keep delivering letters as they arrive, until stopped (Ctrl+C or SIGTERM).",
)
def deliver(connections: int, limit: int | None, forever: bool) -> None:
    """Send the letters waiting in the outbox (and the due retries) over parallel connections."""
    ext = _ext()
    live = sys.stdout.isatty()

    def show(report: DeliveryReport) -> None:
        if live:
            click.echo("\r\033[K" + _progress(report), nl=False)

    try:
        with _stop_on_sigterm():
            while True:
                report = ext.deliver_queued(connections, limit, progress=show)
                click.echo(("\r\033[K" if live else "") + _progress(report))
                if not forever:
                    return
                if not report.sent + report.failed + report.requeued:
                    time.sleep(IDLE_S)
    except KeyboardInterrupt:
        click.echo("\nStopped: the letters being sent were finished, the rest went back to the queue.")


@smtp_accounts_cli.group("outbox")
def outbox_cli() -> None:
    """The outbox: what waits per account, pause, resume, cancel."""


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


@outbox_cli.command("status")
def outbox_status() -> None:
    """Per account: waiting, being sent, sent and failed in 24 h, letters a minute, time left, paused."""
    lines = _ext().outbox_status()
    if not lines:
        click.echo("No accounts and no letters in the outbox.")
        return
    _table(
        ("ID", "Account", "Queued", "Sending", "Sent 24h", "Failed 24h", "Per minute", "Time left", "Paused"),
        [
            (
                line.account_id,
                printable(line.label),
                line.queued,
                line.in_flight,
                line.sent_24h,
                line.failed_24h,
                f"{line.per_minute:.1f}",
                _duration(line.seconds_left),
                _yes_no(line.paused),
            )
            for line in lines
        ],
    )


@outbox_cli.command("pause")
@click.argument("account_id", type=int)
def pause_queue(account_id: int) -> None:
    """Stop every drainer from taking this account's letters (0: Flask-Mail's own route)."""
    _ext().pause_queue(account_id)
    click.echo(f"Queue of account {account_id} paused.")


@outbox_cli.command("resume")
@click.argument("account_id", type=int)
def resume_queue(account_id: int) -> None:
    """Let drainers take this account's letters again."""
    _ext().resume_queue(account_id)
    click.echo(f"Queue of account {account_id} resumed.")


@outbox_cli.command("cancel")
@click.option(
    "--account", "account_id", type=int, default=None, help="Only this account's letters (0: Flask-Mail's)."
)
@click.option("--all", "everything", is_flag=True, help="Every waiting letter.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def cancel_queued(account_id: int | None, everything: bool, yes: bool) -> None:
    """Cancel waiting letters: they are never sent. Letters being sent are left alone."""
    if (account_id is not None) == everything:
        raise click.UsageError("Say which letters: --account ID or --all.")
    which = "every waiting letter" if everything else f"the waiting letters of account {account_id}"
    if not yes:
        click.confirm(f"Cancel {which}? They will never be sent.", abort=True)
    count = _ext().cancel_queued(account_id=account_id)
    click.echo(f"Cancelled {count} letter{'s' if count != 1 else ''}.")


#: How the command line names a state; ``interrupted`` is a ``sending`` row past its lease.
_STATE_WORDS = {INTERRUPTED: "interrupted: outcome unknown"}


@smtp_accounts_cli.command("messages")
@click.option(
    "--status", type=click.Choice([*STATUSES, INTERRUPTED]), default=None, help="Only letters in this state."
)
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
def list_messages(status: str | None, page: int) -> None:
    """List the message log, newest first (50 a page)."""
    found = _ext().messages(status=status, page=page)
    if not found.items:
        click.echo("No letters.")
        return
    _table(
        ("ID", "Created (UTC)", "State", "From", "Route", "Subject"),
        [
            (
                m.id,
                m.created_at.isoformat(sep=" ", timespec="seconds"),
                _STATE_WORDS.get(m.state, m.state),
                _one_line(m.sender),
                _one_line(m.route),
                _one_line(m.subject),
            )
            for m in found.items
        ],
    )
    click.echo(f"Page {found.page} of {found.pages} ({found.total} letters).")


@smtp_accounts_cli.command("resend")
@click.argument("message_id", type=int)
def resend_message(message_id: int) -> None:
    """Send a failed, queued or interrupted letter again now (check an interrupted one first: it may have arrived)."""
    record = _ext().resend_message(message_id)
    click.echo(f"Message {record.id}: {record.state}.")


# --- alerts and the summary -------------------------------------------------------


@smtp_accounts_cli.group("alerts")
def alerts_cli() -> None:
    """Alert channels (email, webhook) and the periodic check."""


@alerts_cli.command("list")
def list_alert_channels() -> None:
    """List the channels (a webhook by its host only) and the events."""
    alerts = _ext().alerts
    _table(
        ("ID", "Kind", "Format", "Sends to", "Through account"),
        [(c.id, c.kind, c.format or "-", c.target, c.account_id or "-") for c in alerts.channels()],
    )
    click.echo("")
    _table(
        ("Event", "On", "Throttle (min)", "Threshold (min)"),
        [
            (
                e.event,
                _yes_no(e.enabled),
                e.throttle_minutes,
                e.threshold_minutes if e.event == "queue_backlog" else "-",
            )
            for e in alerts.event_settings()
        ],
    )


@alerts_cli.command("add")
@click.argument("kind", type=click.Choice(ALERT_KINDS))
@click.option(
    "--url-env", metavar="NAME", help="Environment variable holding the webhook URL (else a hidden prompt)."
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(FORMAT_CHOICES),
    default="json",
    show_default=True,
    help="Webhook payload.",
)
@click.option("--to", "recipients", metavar="ADDRESSES", help="Email: addresses, separated by commas.")
@click.option(
    "--account",
    "account_id",
    type=int,
    default=None,
    help="Email: send through this account (default: Flask-Mail's own settings).",
)
def add_alert_channel(
    kind: str, url_env: str | None, format_: str, recipients: str | None, account_id: int | None
) -> None:
    """Add a channel; a webhook URL is a secret, so it never comes from an argument."""
    url = None
    if kind == "webhook":
        url = _password(url_env, True, "Webhook URL")
    channel = _ext().alerts.add_channel(
        kind, url=url, format=format_, recipients=recipients or "", account_id=account_id
    )
    click.echo(f"Added alert channel {channel.id}: {channel.kind} to {channel.target}.")


@alerts_cli.command("remove")
@click.argument("channel_id", type=int)
def remove_alert_channel(channel_id: int) -> None:
    """Remove a channel."""
    _ext().alerts.remove_channel(channel_id)
    click.echo(f"Removed alert channel {channel_id}.")


@alerts_cli.command("test")
@click.argument("channel_id", type=int)
def test_alert_channel(channel_id: int) -> None:
    """Send a test alert to a channel now."""
    alerts = _ext().alerts
    alerts.send_test(channel_id)
    click.echo(f"A test alert was sent to {alerts.channel(channel_id).target}.")


@alerts_cli.command("check")
def check_alerts() -> None:
    """Notice a queue backlog and send the pending alerts (run it from cron every few minutes)."""
    report = _ext().alerts.check()
    click.echo(
        f"Alerts: {report.sent} sent ({report.merged} counted into them), {report.held} held back by the throttle."
    )
    for error in report.failed:
        click.echo(f"Not delivered: {error}", err=True)


@smtp_accounts_cli.command("summary")
@click.option("--days", type=click.IntRange(1, 366), default=7, show_default=True, help="How many days back.")
@click.option("--send", is_flag=True, help="Mail it (with Flask-Mail's own settings) instead of printing it.")
@click.option(
    "--to",
    "recipients",
    multiple=True,
    metavar="ADDRESS",
    help="Recipient of --send (repeatable); default: the addresses of the email alert channels.",
)
def summary(days: int, send: bool, recipients: tuple[str, ...]) -> None:
    """Per account: letters sent and failed, and the commonest errors (for a weekly cron job)."""
    ext = _ext()
    if not send:
        click.echo(ext.summary(days).text(), nl=False)
        return
    to = list(recipients) or [
        r for c in ext.alerts.channels(active_only=True) if c.kind == "email" for r in c.recipients
    ]
    if not to:
        raise click.UsageError("Say where the summary goes: --to ADDRESS (or add an email alert channel).")
    ext.send_summary(to, days)
    click.echo(f"The summary of {days} days was sent to {', '.join(to)}.")
