"""What every command shares: errors as one line, the extension, tables."""

from __future__ import annotations

import os
import re
import typing as t

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from ..errors import DeliveryError, SMTPAccountsError
from ..hints import hint_for
from ..printable import printable

if t.TYPE_CHECKING:
    from ..api import SMTPAccountsAPI


class CommandGroup(AppGroup):
    """A command group that turns the extension's errors into one line and exit status 1."""

    def invoke(self, ctx: click.Context) -> t.Any:
        try:
            return super().invoke(ctx)
        except (KeyError, IndexError):
            raise
        except (SMTPAccountsError, LookupError) as err:
            result = getattr(err, "result", None)  # AccountCheckFailed carries the check's result
            hint = getattr(err, "hint", None) or getattr(result, "hint", None) or _hint_of(err)
            raise click.ClickException(with_hint(str(err), hint)) from None

    def group(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        kwargs.setdefault("cls", CommandGroup)
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


def one_line(text: str) -> str:
    """A message on one line, a server's words in it escaped so that they cannot steer the terminal."""
    return printable(" ".join(_BLANKS.split(text.strip())))


def with_hint(error: str, hint: str | None) -> str:
    """The error on one line, and the fix-it hint on a line of its own: the two never run together."""
    return one_line(error) + (f"\nHint: {one_line(hint)}" if hint else "")


def extension() -> SMTPAccountsAPI:
    try:
        state = current_app.extensions["smtp_accounts"]
    except KeyError:
        raise click.ClickException("SMTPAccounts is not initialised on this app.") from None
    return t.cast("SMTPAccountsAPI", state.ext)


def table(headers: t.Sequence[str], rows: t.Sequence[t.Sequence[t.Any]]) -> None:
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def command(name: str, **attrs: t.Any) -> t.Callable[[t.Callable[..., t.Any]], click.Command]:
    """A command that runs in the app's context, as Flask's ``AppGroup.command`` makes them."""

    def decorator(f: t.Callable[..., t.Any]) -> click.Command:
        make: t.Callable[[t.Callable[..., t.Any]], click.Command] = click.command(name, **attrs)
        return make(with_appcontext(f))

    return decorator


def group(name: str, **attrs: t.Any) -> t.Callable[[t.Callable[..., t.Any]], CommandGroup]:
    """A group of commands, each run in the app's context."""

    def decorator(f: t.Callable[..., t.Any]) -> CommandGroup:
        return click.group(name, cls=CommandGroup, **attrs)(f)

    return decorator


def secret(env_name: str | None, ask: bool, label: str = "Password") -> str | None:
    """A secret from the environment variable named, or a hidden prompt: never from an argument (shell history, ``ps``)."""
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise click.ClickException(f"The environment variable {env_name} is not set or empty.")
        return value
    if ask:
        return click.prompt(label, hide_input=True)
    return None
