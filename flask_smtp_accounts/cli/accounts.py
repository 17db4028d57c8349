"""The account commands: list, add, edit, delete, check, test-letter, route."""

from __future__ import annotations

import typing as t

import click

from ..account_fields import ACCOUNT_SPECS
from ..declarations import Declared
from ..labels import account_label
from ..presets import PRESET_FIELDS, PRESET_KEYS, get_preset, with_preset
from ..printable import printable
from ..quotas import is_limited, today_figures

if t.TYPE_CHECKING:
    from ..check import CheckResult


from .base import command, extension, secret, table, with_hint, yes_no


@command("list")
def list_accounts() -> None:
    """List the accounts, like the admin list."""
    ext = extension()
    accounts = ext.list_accounts()
    if not accounts:
        click.echo("No SMTP accounts yet. Add one with: flask smtp-accounts add --help")
        return
    usage = ext.quota_usage(a.id for a in accounts if is_limited(a))
    table(
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
                yes_no(a.active),
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


def _field_option(
    field: Declared, for_edit: bool
) -> t.Callable[[t.Callable[..., t.Any]], t.Callable[..., t.Any]]:
    """The option of a declared account field; a required one is required on ``add`` unless a preset sets it."""
    if field.type is bool:
        flags = field.cli_flags or f"{field.option}/--no-{field.option[2:]}"
        return click.option(flags, field.name, default=None, help=field.cli)
    kind: t.Any = field.cli_type
    if kind is None and field.choices:
        kind = click.Choice([value for value, _ in field.choices])
    elif kind is None and field.type is int:
        kind = click.IntRange(field.minimum, field.maximum)
    required = field.required and not for_edit and field.name not in PRESET_FIELDS
    return click.option(
        field.option, field.name, type=kind, metavar=field.cli_metavar, required=required, help=field.cli
    )


def _account_options(for_edit: bool) -> t.Callable[[t.Callable[..., t.Any]], t.Callable[..., t.Any]]:
    """The options naming account fields (one per declared field), then the others; on ``edit`` every one is optional."""

    def decorate(f: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        options = [_field_option(field, for_edit) for field in ACCOUNT_SPECS if field.cli]
        options += [
            click.option(
                "--preset",
                type=click.Choice(PRESET_KEYS),
                help="A provider's host, port, security and authorization; options given override them.",
            ),
            click.option(
                "--region", help="With --preset amazon-ses or zoho: the region (default: the first listed)."
            ),
            click.option(
                "--password-env",
                metavar="NAME",
                help="Read the password from this environment variable instead of a prompt.",
            ),
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


def _oauth2_secrets(given: dict[str, t.Any], *, ask_secret: bool, ask_token: bool) -> dict[str, t.Any]:
    """The OAuth2 secrets, from the environment variables named or hidden prompts; never from arguments."""
    secrets = {
        "oauth_client_secret": secret(given.pop("client_secret_env"), ask_secret, "OAuth2 client secret"),
        "oauth_refresh_token": secret(given.pop("refresh_token_env"), ask_token, "OAuth2 refresh token"),
    }
    return {name: value for name, value in secrets.items() if value}


def _describe(account: t.Any) -> str:
    name = account_label(account.sender_name, account.sender_email)
    return f"account {account.id}: {name} via {account.host}:{account.port} ({account.security})"


def _saved(action: str, account: t.Any, check: bool) -> None:
    click.echo(f"{action} {_describe(account)}" + ("" if check else " (not checked)"))


@command("add")
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
    password = secret(password_env, ask=needs_password)
    account = extension().add_account(password=password, check=check, **fields, **secrets)
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


@command("edit")
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
    ext = extension()
    ext.get_account(account_id)
    secrets = _oauth2_secrets(given, ask_secret=ask_client_secret, ask_token=ask_refresh_token)
    preset, region = given.pop("preset"), given.pop("region")
    fields = with_preset(preset, _fields(**given), region)
    _preset_notes(preset)
    password = secret(password_env, ask=ask_password)
    account = ext.update_account(account_id, password=password, check=check, **fields, **secrets)
    _saved("Saved", account, check)


@command("delete")
@click.argument("account_id", type=int)
@click.confirmation_option(prompt="Delete this SMTP account?")
def delete_account(account_id: int) -> None:
    """Delete an account."""
    ext = extension()
    description = _describe(ext.get_account(account_id))
    ext.delete_account(account_id)
    click.echo(f"Deleted {description}")


def _report(result: CheckResult) -> None:
    if result.ok:
        click.echo(f"{printable(result.message)} ({result.elapsed_s:.2f} s)")
        return
    raise click.ClickException(with_hint(result.message, result.hint))


@command("check")
@click.argument("account_id", type=int)
@click.option(
    "--send-test/--no-send-test",
    default=None,
    help="Also send a test letter (default: the send_test_on_check setting).",
)
def check_account(account_id: int, send_test: bool | None) -> None:
    """Connect to an account's server and log in; exit status 1 when that fails."""
    ext = extension()
    _report(ext.check_account(ext.get_account(account_id), send_test=send_test))


@command("test-letter")
@click.argument("account_id", type=int)
@click.option("--to", "recipient", metavar="ADDRESS", help="Recipient (default: the test_recipient setting).")
def send_test_letter(account_id: int, recipient: str | None) -> None:
    """Send a test letter through an account."""
    ext = extension()
    _report(ext.send_test_letter(ext.get_account(account_id), recipient))


@command("route")
@click.argument("sender")
@click.option("--bulk", is_flag=True, help="Route it as a newsletter (bulk) letter.")
def preview_route(sender: str, bulk: bool) -> None:
    """Show which account a letter from SENDER would go through, and why.

    SENDER is an address or "Display Name <address>". Nothing is sent.
    """
    choice = extension().choose_account(sender, bulk=True if bulk else None)
    if choice.account is None:
        click.echo("Flask-Mail's own MAIL_* settings")
    else:
        click.echo(_describe(choice.account))
    click.echo(f"rule: {choice.reason}")
    if choice.candidates:
        click.echo("candidates: " + ", ".join(str(i) for i in choice.candidates))


#: The commands this module adds to ``flask smtp-accounts``.
COMMANDS = (
    list_accounts,
    add_account,
    edit_account,
    delete_account,
    check_account,
    send_test_letter,
    preview_route,
)
