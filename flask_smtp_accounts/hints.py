"""Fix-it hints for the classic mistakes in an SMTP account's settings.

A failed check says what went wrong ("TLS failed: WRONG_VERSION_NUMBER");
a hint says what to change ("this port speaks plain SMTP: choose STARTTLS,
or port 465 for SSL"). :func:`hint_for` looks at the error, the exception
under it and the account, and returns one sentence or ``None``; the
admin pages and the command line show it under the error.

Each hint is a :class:`~flask_smtp_accounts.texts.Text`: English for the
command line and logs, and a key, a catalogue msgid and parameters for
the admin pages, which say it in the page's language.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import typing as t

from cryptography import x509

from . import deadlines
from .errors import DeliveryError
from .texts import N_, Text

if t.TYPE_CHECKING:
    from .models import AccountInfo

#: What OpenSSL says when the peer's first bytes are not TLS (it varies with the version).
_NOT_TLS_REASONS = {
    "WRONG_VERSION_NUMBER",
    "PACKET_LENGTH_TOO_LONG",
    "RECORD_LAYER_FAILURE",
    "UNKNOWN_PROTOCOL",
    "HTTP_REQUEST",
}
#: X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH = {62, 64}
#: Self-signed or signed by an unknown authority.
_UNTRUSTED = {18, 19, 20, 21}

_GOOGLE_MARKERS = ("gsmtp", "support.google.com/mail", "accounts.google.com")
_GOOGLE_HOSTS = ("gmail.com", "googlemail.com", "google.com")
_MICROSOFT_HOSTS = ("office365.com", "outlook.com", "office.com", "hotmail.com", "live.com")


def hint_for(
    error: DeliveryError,
    cause: BaseException | None,
    account: AccountInfo | None,
    *,
    probe_timeout: float = 5.0,
) -> str | None:
    """A sentence telling how to fix ``error`` (a :class:`~flask_smtp_accounts.texts.Text`), when it is a known mistake."""
    if error.hint:
        return error.hint
    for rule in (_not_tls_port, _tls_port_without_ssl, _certificate, _google, _microsoft):
        hint = rule(error, cause, account, probe_timeout)
        if hint:
            return hint
    return None


def _security(account: AccountInfo | None) -> str | None:
    return account.security if account is not None else None


def _not_tls_port(
    error: DeliveryError, cause: BaseException | None, account: AccountInfo | None, _: float
) -> Text | None:
    """SSL (implicit TLS) chosen for a port that speaks plain SMTP first, such as 587."""
    if (
        _security(account) != "ssl"
        or not isinstance(cause, ssl.SSLError)
        or isinstance(cause, ssl.SSLCertVerificationError)
    ):
        return None
    if (cause.reason or "").upper() not in _NOT_TLS_REASONS:
        return None
    assert account is not None
    return Text(
        "ssl-on-plain-port",
        N_(
            "Port %(port)s answers in plain text, not TLS: the server expects STARTTLS on this port"
            " (as on port 587). Choose STARTTLS as the connection security, or use port 465 for SSL."
        ),
        port=account.port,
    )


def _greeting_timed_out(cause: BaseException | None) -> bool:
    """The TCP connection was made but no greeting came before the timeout."""
    return isinstance(cause, smtplib.SMTPServerDisconnected) and isinstance(
        cause.__context__, (TimeoutError, socket.timeout)
    )


def _tls_port_without_ssl(
    error: DeliveryError, cause: BaseException | None, account: AccountInfo | None, _: float
) -> Text | None:
    """STARTTLS (or no security) chosen for a port that wants TLS from the first byte, such as 465."""
    if (
        account is None
        or account.security == "ssl"
        or error.stage != "connect"
        or not _greeting_timed_out(cause)
    ):
        return None
    if account.port == 465:
        return Text(
            "starttls-on-port-465",
            N_(
                "Port 465 expects SSL (implicit TLS) from the first byte, so the server waited for TLS while this"
                " site waited for its greeting. Choose SSL as the connection security, or use port 587 with STARTTLS."
            ),
        )
    return Text(
        "no-greeting",
        N_(
            "The server accepted the connection on port %(port)s but sent no greeting before the timeout."
            " A server on an SSL port (usually 465) waits for TLS first: if this is such a port, choose SSL as the"
            " connection security (or use port 587 with STARTTLS)."
        ),
        port=account.port,
    )


def _certificate(
    error: DeliveryError, cause: BaseException | None, account: AccountInfo | None, timeout: float
) -> Text | None:
    if not isinstance(cause, ssl.SSLCertVerificationError) or account is None:
        return None
    if cause.verify_code in _NAME_MISMATCH:
        names = certificate_names(account, timeout=timeout)
        if names:
            return Text(
                "certificate-names",
                N_(
                    "The server's certificate is issued for %(names)s, not for %(host)s. Enter one of these"
                    " names as the mail server address instead of %(host)s."
                ),
                names=", ".join(names[:5]),
                host=account.host,
            )
        return Text(
            "certificate-other-name",
            N_(
                "The server's certificate is not issued for %(host)s. Enter the host name the provider documents"
                " for SMTP (the one the certificate names), not an IP address or an alias."
            ),
            host=account.host,
        )
    if cause.verify_code in _UNTRUSTED:
        return Text(
            "certificate-untrusted",
            N_(
                "The server's certificate is self-signed or signed by an authority this site does not trust. Put that"
                " authority's certificate in SMTP_ACCOUNTS_CA_FILE or, only for a server you control on a network you"
                " trust, turn off certificate verification for this account."
            ),
        )
    return None


def _reply(error: DeliveryError) -> str:
    return (error.reply or "").lower()


def _is_google(error: DeliveryError, account: AccountInfo | None) -> bool:
    host = (account.host if account is not None else error.host or "").lower()
    if account is not None and account.auth == "oauth2" and account.oauth_provider == "google":
        return True
    return any(marker in _reply(error) for marker in _GOOGLE_MARKERS) or host.endswith(_GOOGLE_HOSTS)


def _google(
    error: DeliveryError, cause: BaseException | None, account: AccountInfo | None, _: float
) -> Text | None:
    """Gmail refuses an account password: it wants an app password or OAuth2."""
    if error.stage != "login" or error.code not in (534, 535) or not _is_google(error, account):
        return None
    if account is not None and account.auth == "oauth2":
        return Text(
            "gmail-token-refused",
            N_(
                "Gmail refused the access token: the login must be the address that signed in, and the token must"
                " carry the scope https://mail.google.com/. Sign in again with Google in the account form."
            ),
        )
    return Text(
        "gmail-app-password",
        N_(
            "Gmail does not accept the account's normal password for SMTP. Either create an app password"
            " (Google Account > Security > 2-Step Verification > App passwords; needs 2-Step Verification) and"
            " enter it as the password, or switch the account's authorization to OAuth2 with provider Google."
        ),
    )


def _is_microsoft(error: DeliveryError, account: AccountInfo | None) -> bool:
    host = (account.host if account is not None else error.host or "").lower()
    reply = _reply(error)
    if account is not None and account.auth == "oauth2" and account.oauth_provider == "microsoft":
        return True
    return host.endswith(_MICROSOFT_HOSTS) or "5.7.139" in reply or "5.7.30" in reply or "aka.ms" in reply


def _microsoft(
    error: DeliveryError, cause: BaseException | None, account: AccountInfo | None, _: float
) -> Text | None:
    """Microsoft 365 refuses basic authentication, or has SMTP AUTH turned off."""
    if error.stage != "login" or error.code is None or not _is_microsoft(error, account):
        return None
    reply = _reply(error)
    if "5.7.30" in reply:
        return Text(
            "microsoft-basic-auth-off",
            N_(
                "Microsoft 365 no longer accepts a password for SMTP (basic authentication for Client Submission is"
                " off). Switch the account's authorization to OAuth2 with provider Microsoft: app-only with a client"
                " secret, or Sign in with Microsoft."
            ),
        )
    if "5.7.139" in reply and "smtpclientauthentication is disabled" in reply:
        return Text(
            "microsoft-smtp-auth-disabled",
            N_(
                "SMTP AUTH is turned off for this mailbox or the whole tenant. An Exchange administrator turns it on"
                " for the mailbox (Microsoft 365 admin center > Users > the user > Mail > Manage email apps >"
                " Authenticated SMTP, or Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false);"
                " OAuth2 needs it too. Then prefer OAuth2 with provider Microsoft: passwords stop working at the end"
                " of 2026."
            ),
        )
    if "5.7.139" in reply:
        return Text(
            "microsoft-password-blocked",
            N_(
                "Microsoft 365 refused the password: security defaults, multi-factor authentication or a Conditional"
                " Access policy block password sign-in for SMTP. Switch the account's authorization to OAuth2 with"
                " provider Microsoft."
            ),
        )
    if "5.7.3" in reply and account is not None and account.auth == "oauth2":
        return Text(
            "exchange-token-refused",
            N_(
                "Exchange Online refused the access token. For app-only access, register the app's service principal"
                " in Exchange Online and give it rights on the mailbox (New-ServicePrincipal, then Add-MailboxPermission"
                " -AccessRights FullAccess), grant admin consent for SMTP.SendAsApp, and make sure SMTP AUTH is on for"
                " the mailbox; the login must be the mailbox's address."
            ),
        )
    return None


def certificate_names(account: AccountInfo, *, timeout: float) -> list[str]:
    """The DNS names and addresses the server's certificate is issued for, read without verifying it.

    Only used to word a hint after verification failed; nothing is sent on
    this connection but EHLO and STARTTLS. ``[]`` when it cannot be read.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    smtp: smtplib.SMTP | None = None
    try:
        if account.security == "ssl":
            smtp = deadlines.SMTP_SSL(account.host, account.port, timeout=timeout, context=context)
        else:
            smtp = deadlines.SMTP(account.host, account.port, timeout=timeout)
            smtp.ehlo()
            smtp.starttls(context=context)
        sock = smtp.sock
        der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
    except (smtplib.SMTPException, OSError, UnicodeError):
        return []
    finally:
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
    if not der:
        return []
    return _names_in(der)


def _names_in(der: bytes) -> list[str]:
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        common = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return [str(a.value) for a in common]
    names: list[str] = list(san.get_values_for_type(x509.DNSName))
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return names
