"""The extension's own translation domain, and the words for results and errors.

The admin pages speak the site's language (flask-babel's locale selector)
from the ``smtp_accounts`` catalogue shipped in the package, apart from
the site's own ``messages`` and flask-admin's ``admin`` catalogues. The
core raises errors and returns results in English for logs and the
command line; this module puts them into words of the page's language.
The core's sentences (hints, OAuth2 and sign-in errors, failure reasons)
are :class:`~flask_smtp_accounts.texts.Text` objects: :func:`say` looks
their msgid up in the same catalogue. What a server, a token endpoint or
the operating system said is data and is quoted as it came.
"""

from __future__ import annotations

import os
import typing as t

from flask import flash
from flask_babel import Domain

from ..account_fields import AccountInfo
from ..declarations import declared
from ..errors import AccountCheckFailed, DeliveryError, InvalidAccountError, OAuth2Error, SMTPAccountsError
from ..routing import RULE_BULK_NAME, RULE_DISABLED, RULE_LARGEST_ID, RULE_NO_ACCOUNT
from ..texts import Text
from ..validation import LIMITS, MAX_LIMIT

if t.TYPE_CHECKING:
    from ..check import CheckResult
    from ..errors import InvalidSettingError

TRANSLATIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "translations")

domain = Domain(TRANSLATIONS, domain="smtp_accounts")
gettext = domain.gettext
lazy_gettext = domain.lazy_gettext
_ = gettext
_l = lazy_gettext

STAGES = {
    "connect": _l("connection"),
    "tls": _l("TLS"),
    "login": _l("login"),
    "send": _l("sending"),
    "test letter": _l("test letter"),
    "token": _l("access token"),
    "cool-down": _l("cool-down"),
    "quota": _l("sending limit"),
}

RULES = {
    RULE_BULK_NAME: _l("bulk letter: the account's sender name equals the letter's display name"),
    RULE_LARGEST_ID: _l("the active account with this email and the largest ID"),
    RULE_NO_ACCOUNT: _l("no active account has this email: Flask-Mail's own MAIL_* settings are used"),
    RULE_DISABLED: _l(
        "sending through accounts is off in the settings: Flask-Mail's own MAIL_* settings are used"
    ),
}

SECURITY = {value: _l(label) for value, label in declared(AccountInfo, "security").choices}
AUTH = {value: _l(label) for value, label in declared(AccountInfo, "auth").choices}

#: What to say about a refused account field; the core's English text is the fallback.
ACCOUNT_FIELD_ERRORS = {
    "sender_email": _l("Enter a valid email address."),
    "sender_name": _l("One line of at most 255 characters."),
    "host": _l("Enter the mail server's address, without spaces."),
    "port": _l("A number from 1 to 65535."),
    "security": _l("Choose one of the listed options."),
    "auth": _l("Choose one of the listed options."),
    "login": _l("Required when authorization is login and password."),
    "password": _l("Required when authorization is login and password."),
    "oauth_provider": _l("Choose one of the listed options."),
    "oauth_flow": _l("Choose one of the listed options; Google has no app-only grant for SMTP."),
    "oauth_tenant": _l("The directory (tenant) ID or domain; app-only access needs the tenant's own."),
    "oauth_client_id": _l("Required with OAuth2: the app's client (application) ID."),
    "oauth_client_secret": _l("Required with OAuth2: the app's client secret."),
    "oauth_refresh_token": _l("Required for the delegated grant: sign in once to get it."),
    "oauth_scope": _l("Required with your own endpoints."),
    "oauth_token_url": _l("An HTTPS address; required with your own endpoints."),
    "oauth_authorize_url": _l("An HTTPS address."),
    "backup_ids": _l("At most 10 other existing accounts, each chosen once."),
    **dict.fromkeys(LIMITS, _l("A whole number from 0 (no limit) to %(max)s.", max=f"{MAX_LIMIT:,}")),
    "over_limit": _l("Choose one of the listed options."),
}


def say(text: t.Any) -> str:
    """A sentence of the core in the page's language; anything but a ``Text`` is data, shown as it came.

    Parameters that are ``Text`` themselves are said in the page's language
    too; the others (ports, hosts, a server's words) are left alone.
    """
    if not isinstance(text, Text):
        return str(text)
    if not text.params:
        return gettext(text.msgid)
    return gettext(
        text.msgid,
        **{name: say(value) if isinstance(value, Text) else value for name, value in text.params.items()},
    )


def flash_error(text: str, hint: str | None = None) -> None:
    """Flash an error, and its fix-it hint as a message of its own: the two never run together."""
    flash(text, "error")
    if hint:
        flash(gettext("Hint: %(hint)s", hint=say(hint)), "info")


def describe_error(err: BaseException) -> str:
    """What an exception of the core says, in the page's language where the core said it with a ``Text``.

    A ``DeliveryError`` gives its reason and the server's (or token
    endpoint's) reply, without the English "... failed via account ..."
    frame around them; the stage is for the caller's sentence.
    """
    if isinstance(err, DeliveryError):
        details = say(err.reason)
        if err.code is not None:
            return gettext(
                "%(details)s. The server replied: %(reply)s",
                details=details,
                reply=f"{err.code} {err.reply or ''}".strip(),
            )
        if isinstance(err, OAuth2Error) and err.reply:
            return gettext(
                "%(details)s. The token endpoint replied: %(reply)s", details=details, reply=err.reply
            )
        return details
    if isinstance(err, InvalidAccountError):
        return field_error(err, ACCOUNT_FIELD_ERRORS)
    if err.args and isinstance(err.args[0], Text):
        return say(err.args[0])
    return str(err)


def field_error(err: InvalidAccountError | InvalidSettingError, texts: t.Mapping[str, t.Any]) -> str:
    """The message for a refused field, in the page's language (a sentence of the core's own, when it has one)."""
    if isinstance(err.message, Text):
        return say(err.message)
    text = texts.get(err.field)
    return str(text) if text is not None else err.message


def stage_name(stage: str | None) -> str:
    return str(STAGES.get(stage or "", stage or ""))


def server_reply(result: CheckResult) -> str | None:
    """``"535 5.7.8 Authentication credentials invalid"``, or ``None`` without a reply."""
    if result.code is None:
        return None
    return f"{result.code} {result.reply or ''}".strip()


def describe_failure(result: CheckResult) -> str:
    """One sentence naming the stage that failed and the server's reply (or, without one, what went wrong)."""
    reply = server_reply(result)
    if reply:
        return gettext(
            "The check failed at the %(stage)s stage. The server replied: %(reply)s",
            stage=stage_name(result.stage),
            reply=reply,
        )
    details = say(result.reason) if result.reason else result.message
    if result.stage == "token" and result.reply:
        return gettext(
            "The check failed at the %(stage)s stage: %(details)s. The token endpoint replied: %(reply)s",
            stage=stage_name(result.stage),
            details=details,
            reply=result.reply,
        )
    return gettext(
        "The check failed at the %(stage)s stage: %(details)s",
        stage=stage_name(result.stage),
        details=details,
    )


def account_refused(form: t.Any, err: SMTPAccountsError) -> None:
    """Show why the account form was not saved, next to the field when there is one (the password is cleared)."""
    form.new_password.data = ""
    if isinstance(err, AccountCheckFailed):
        flash_error(_("The account was not saved.") + " " + describe_failure(err.result), err.result.hint)
    elif isinstance(err, InvalidAccountError):
        name = "new_password" if err.field == "password" else err.field
        message = field_error(err, ACCOUNT_FIELD_ERRORS)
        if name in form:
            form[name].errors = [*form[name].errors, message]
        flash(_("The account was not saved.") + " " + message, "error")
    else:
        flash(_("The account was not saved: %(error)s", error=describe_error(err)), "error")
