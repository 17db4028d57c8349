"""The admin pages in Russian: fix-it hints, OAuth2 and sign-in errors, resends (issues 4 and 8).

The core says these in English (for logs and the command line) as
``texts.Text`` objects; the admin looks each up in the extension's
catalogue. Every hint is provoked against a local server where one can
provoke it, and read on the Russian page and on the English one, where it
must read exactly as before.
"""

from __future__ import annotations

import ast
import html
import pickle
import re
import smtplib
import ssl
import typing as t
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask_mail import Message
from helpers import AdminSite
from misbehaving import Refuse
from provider_replies import GMAIL_535, MICROSOFT_5_7_30, MICROSOFT_5_7_139, MICROSOFT_SECURITY_DEFAULTS

from flask_smtp_accounts import DeliveryError
from flask_smtp_accounts.account_fields import OAUTH2, AccountInfo
from flask_smtp_accounts.check import CheckResult
from flask_smtp_accounts.connection import failure
from flask_smtp_accounts.declarations import specs
from flask_smtp_accounts.hints import hint_for
from flask_smtp_accounts.oauth2 import MICROSOFT_APP_SCOPE
from flask_smtp_accounts.settings import SettingsInfo
from flask_smtp_accounts.testing import LOGIN, PASSWORD, Certs, SMTPServer, free_port
from flask_smtp_accounts.testing.oauth import CLIENT_ID, CLIENT_SECRET, OAuthServer
from flask_smtp_accounts.texts import N_, Text

ADMIN = "/admin/smtp-accounts"
ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "flask_smtp_accounts"


@pytest.fixture
def microsoft() -> t.Iterator[OAuthServer]:
    """A local provider speaking Microsoft's errors, standing in for login.microsoftonline.com."""
    with OAuthServer(style="microsoft") as provider:
        yield provider


@pytest.fixture
def admin_site_config(microsoft: OAuthServer) -> dict[str, t.Any]:
    base = f"{microsoft.base_url}/{{tenant}}/oauth2/v2.0"
    return {
        "SMTP_ACCOUNTS_OAUTH2_PROVIDERS": {
            "microsoft": {"token_url": f"{base}/token", "authorize_url": f"{base}/authorize"}
        }
    }


@pytest.fixture
def client(admin_site: AdminSite) -> t.Any:
    client = admin_site.app.test_client()
    client.get("/test-login/admin")
    return client


def text_of(page: str) -> str:
    """The visible text of a page, tags removed and entities decoded, spaces collapsed."""
    body = page[max(page.find("<body"), 0) :]
    body = re.sub(r"<script.*?</script>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, "the page has no CSRF token"
    return match.group(1)


def post_page(client: t.Any, url: str, data: dict[str, t.Any], *, lang: str) -> str:
    """POST a form of ``url`` (with its CSRF token) in language ``lang``; the text of the page that follows."""
    client.set_cookie("lang", lang)
    token = csrf_token(client.get(url).get_data(as_text=True))
    response = client.post(url, data={**data, "csrf_token": token}, follow_redirects=True)
    assert response.status_code == 200
    return text_of(response.get_data(as_text=True))


def get_page(client: t.Any, url: str, *, lang: str) -> str:
    client.set_cookie("lang", lang)
    response = client.get(url, follow_redirects=True)
    assert response.status_code == 200
    return text_of(response.get_data(as_text=True))


def account_form(server: SMTPServer, **fields: str) -> dict[str, str]:
    form = {
        "active": "y",
        "sender_name": "Hello",
        "sender_email": "hello@example.com",
        "host": server.host,
        "port": str(server.port),
        "security": "starttls",
        "verify_tls": "y",
        "auth": "login",
        "login": LOGIN,
        "new_password": PASSWORD,
        "backup_ids": "",
    }
    form.update(fields)
    return form


def oauth2_form(server: SMTPServer, **fields: str) -> dict[str, str]:
    """An app-only OAuth2 account (client credentials)."""
    values = {
        "auth": "oauth2",
        "new_password": "",
        "oauth_provider": "microsoft",
        "oauth_flow": "app",
        "oauth_tenant": "contoso.onmicrosoft.com",
        "oauth_client_id": CLIENT_ID,
        "oauth_client_secret": CLIENT_SECRET,
        "oauth_refresh_token": "",
        "oauth_scope": "",
        "oauth_token_url": "",
        "oauth_authorize_url": "",
    }
    return account_form(server, **{**values, **fields})


def accounts(site: AdminSite) -> list[t.Any]:
    with site.app.app_context():
        return list(site.ext.Account.query.all())


# --- every hint, on the Russian page and on the English one ------------------------------------


@dataclass
class Mistake:
    """A classic mistake, its hint's key, and the hint as each page says it (``{port}``, ``{host}`` filled in)."""

    key: str
    server: t.Callable[[Certs, OAuthServer], dict[str, t.Any]]
    form: t.Callable[[SMTPServer, OAuthServer], dict[str, str]]
    russian: str
    english: str
    settings: dict[str, t.Any] = field(default_factory=dict)


def _starttls(certs: Certs, **kwargs: t.Any) -> dict[str, t.Any]:
    return {"tls": "starttls", "cert": (certs.server_cert, certs.server_key), **kwargs}


MISTAKES = [
    Mistake(
        "ssl-on-plain-port",
        lambda certs, _: _starttls(certs, auth=(LOGIN, PASSWORD)),
        lambda server, _: account_form(server, security="ssl"),
        "Порт {port} отвечает открытым текстом, а не TLS: на этом порту сервер ждёт STARTTLS (как на порту 587)."
        " Выберите STARTTLS в поле «Защита соединения» или используйте для SSL порт 465.",
        "Port {port} answers in plain text, not TLS: the server expects STARTTLS on this port (as on port 587)."
        " Choose STARTTLS as the connection security, or use port 465 for SSL.",
    ),
    Mistake(
        "no-greeting",
        lambda certs, _: {
            "tls": "ssl",
            "cert": (certs.server_cert, certs.server_key),
            "auth": (LOGIN, PASSWORD),
        },
        lambda server, _: account_form(server, security="starttls"),
        "Сервер принял соединение на порту {port}, но не прислал приветствие до истечения таймаута. Сервер на"
        " SSL-порту (обычно 465) сначала ждёт TLS: если это такой порт, выберите SSL в поле «Защита соединения»"
        " (или используйте порт 587 со STARTTLS).",
        "The server accepted the connection on port {port} but sent no greeting before the timeout. A server on an"
        " SSL port (usually 465) waits for TLS first: if this is such a port, choose SSL as the connection security"
        " (or use port 587 with STARTTLS).",
        settings={"timeout_s": 1},
    ),
    Mistake(
        "certificate-names",
        lambda certs, _: {
            "tls": "starttls",
            "cert": (certs.mismatch_cert, certs.mismatch_key),
            "auth": (LOGIN, PASSWORD),
        },
        lambda server, _: account_form(server),
        "Сертификат сервера выдан для wrong.example, а не для {host}. Введите одно из этих имён в поле «Адрес"
        " почтового сервера» вместо {host}.",
        "The server's certificate is issued for wrong.example, not for {host}. Enter one of these names as the mail"
        " server address instead of {host}.",
    ),
    Mistake(
        "certificate-untrusted",
        lambda certs, _: {
            "tls": "starttls",
            "cert": (certs.selfsigned_cert, certs.selfsigned_key),
            "auth": (LOGIN, PASSWORD),
        },
        lambda server, _: account_form(server),
        "Сертификат сервера самоподписанный или подписан центром сертификации, которому этот сайт не доверяет."
        " Укажите сертификат этого центра в SMTP_ACCOUNTS_CA_FILE или — только для своего сервера в доверенной"
        " сети — отключите проверку сертификата для этой учётной записи.",
        "The server's certificate is self-signed or signed by an authority this site does not trust. Put that"
        " authority's certificate in SMTP_ACCOUNTS_CA_FILE or, only for a server you control on a network you"
        " trust, turn off certificate verification for this account.",
    ),
    Mistake(
        "gmail-app-password",
        lambda certs, _: _starttls(certs, auth=(LOGIN, "app-password"), auth_reply=GMAIL_535),
        lambda server, _: account_form(server),
        "Gmail не принимает для SMTP обычный пароль аккаунта. Создайте пароль приложения (Аккаунт Google >"
        " Безопасность > Двухэтапная аутентификация > Пароли приложений; нужна двухэтапная аутентификация) и"
        " введите его как пароль или переключите авторизацию учётной записи на OAuth2 с провайдером Google.",
        "Gmail does not accept the account's normal password for SMTP. Either create an app password (Google"
        " Account > Security > 2-Step Verification > App passwords; needs 2-Step Verification) and enter it as the"
        " password, or switch the account's authorization to OAuth2 with provider Google.",
    ),
    Mistake(
        "gmail-token-refused",
        lambda certs, _: _starttls(certs, xoauth2=lambda login, token: False, auth_reply=GMAIL_535),
        lambda server, provider: oauth2_form(
            server,
            oauth_provider="custom",
            oauth_token_url=provider.token_url,
            oauth_scope=MICROSOFT_APP_SCOPE,
        ),
        "Gmail отклонил токен доступа: логином должен быть адрес, с которым выполнен вход, а токен должен"
        " включать область доступа https://mail.google.com/. Войдите снова через Google в форме учётной записи.",
        "Gmail refused the access token: the login must be the address that signed in, and the token must carry"
        " the scope https://mail.google.com/. Sign in again with Google in the account form.",
    ),
    Mistake(
        "microsoft-basic-auth-off",
        lambda certs, _: _starttls(certs, auth=(LOGIN, "other"), auth_reply=MICROSOFT_5_7_30),
        lambda server, _: account_form(server),
        "Microsoft 365 больше не принимает пароль для SMTP (базовая проверка подлинности для Client Submission"
        " отключена). Переключите авторизацию учётной записи на OAuth2 с провайдером Microsoft: «только"
        " приложение» с секретом клиента или кнопка «Войти через Microsoft».",
        "Microsoft 365 no longer accepts a password for SMTP (basic authentication for Client Submission is off)."
        " Switch the account's authorization to OAuth2 with provider Microsoft: app-only with a client secret, or"
        " Sign in with Microsoft.",
    ),
    Mistake(
        "microsoft-smtp-auth-disabled",
        lambda certs, _: _starttls(certs, auth=(LOGIN, "other"), auth_reply=MICROSOFT_5_7_139),
        lambda server, _: account_form(server),
        "SMTP AUTH отключён для этого почтового ящика или для всего клиента (tenant). Администратор Exchange"
        " включает его для ящика (Центр администрирования Microsoft 365 > Пользователи > пользователь > Почта >"
        " Управление приложениями электронной почты > SMTP с проверкой подлинности или Set-CASMailbox -Identity"
        " <mailbox> -SmtpClientAuthenticationDisabled $false); для OAuth2 он тоже нужен. Затем лучше перейти на"
        " OAuth2 с провайдером Microsoft: пароли перестанут работать в конце 2026 года.",
        "SMTP AUTH is turned off for this mailbox or the whole tenant. An Exchange administrator turns it on for the"
        " mailbox (Microsoft 365 admin center > Users > the user > Mail > Manage email apps > Authenticated SMTP, or"
        " Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false); OAuth2 needs it too. Then"
        " prefer OAuth2 with provider Microsoft: passwords stop working at the end of 2026.",
    ),
    Mistake(
        "microsoft-password-blocked",
        lambda certs, _: _starttls(certs, auth=(LOGIN, "other"), auth_reply=MICROSOFT_SECURITY_DEFAULTS),
        lambda server, _: account_form(server),
        "Microsoft 365 отклонил пароль: параметры безопасности по умолчанию, многофакторная проверка подлинности"
        " или политика условного доступа запрещают вход по паролю для SMTP. Переключите авторизацию учётной"
        " записи на OAuth2 с провайдером Microsoft.",
        "Microsoft 365 refused the password: security defaults, multi-factor authentication or a Conditional Access"
        " policy block password sign-in for SMTP. Switch the account's authorization to OAuth2 with provider"
        " Microsoft.",
    ),
    Mistake(
        "exchange-token-refused",
        lambda certs, _: _starttls(
            certs, xoauth2=lambda login, token: False, auth_reply="535 5.7.3 Authentication unsuccessful"
        ),
        lambda server, _: oauth2_form(server),
        "Exchange Online отклонил токен доступа. Для доступа «только приложение» зарегистрируйте субъект-службу"
        " приложения в Exchange Online и дайте ей права на почтовый ящик (New-ServicePrincipal, затем"
        " Add-MailboxPermission -AccessRights FullAccess), предоставьте согласие администратора на SMTP.SendAsApp"
        " и убедитесь, что для ящика включён SMTP AUTH; логином должен быть адрес ящика.",
        "Exchange Online refused the access token. For app-only access, register the app's service principal in"
        " Exchange Online and give it rights on the mailbox (New-ServicePrincipal, then Add-MailboxPermission"
        " -AccessRights FullAccess), grant admin consent for SMTP.SendAsApp, and make sure SMTP AUTH is on for the"
        " mailbox; the login must be the mailbox's address.",
    ),
]


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.key for m in MISTAKES])
def test_the_hint_of_a_failed_check_reads_in_russian_and_as_before_in_english(
    admin_site: AdminSite, client: t.Any, certs: Certs, microsoft: OAuthServer, mistake: Mistake
) -> None:
    if mistake.settings:
        with admin_site.app.app_context():
            admin_site.ext.update_settings(**mistake.settings)
    with SMTPServer(**mistake.server(certs, microsoft)) as server:
        form = mistake.form(server, microsoft)
        russian = post_page(client, f"{ADMIN}/accounts/new/", form, lang="ru")
        english = post_page(client, f"{ADMIN}/accounts/new/", form, lang="en")

    values = {"port": server.port, "host": server.host}
    assert "Учётная запись не сохранена. Проверка не прошла на этапе" in russian
    assert mistake.russian.format(**values) in russian
    assert mistake.english.format(**values)[:40] not in russian
    assert mistake.english.format(**values) in english
    assert accounts(admin_site) == []


@pytest.fixture
def failing_test_letter(admin_site: AdminSite, monkeypatch: pytest.MonkeyPatch) -> t.Callable[..., str]:
    """``failing_test_letter(port, cause)``: the test letter page's URL, its send failing with ``cause`` as the check would.

    For the hints no local server can provoke (a port 465 this test may not
    bind, a certificate whose names cannot be read): the failure and its
    hint are made by the real ``connection.failure`` and ``hints.hint_for``, only the connection is not.
    """

    def arrange(port: int, cause: BaseException) -> str:
        with admin_site.app.app_context():
            account = admin_site.ext.add_account(
                check=False,
                sender_email="hello@example.com",
                host="127.0.0.1",
                port=port,
                security="starttls",
                auth="none",
            )
            info = account
            err = failure("connect", cause, info)
            account_id = account.id
        hint = hint_for(err, err.cause, info, probe_timeout=1.0)  # as the check works it out
        result = CheckResult(False, err.stage, err.code, err.reply, 0.0, str(err), None, hint, err.reason)
        monkeypatch.setattr(admin_site.ext, "send_test_letter", lambda account, recipient=None: result)
        return f"{ADMIN}/accounts/test-letter/?id={account_id}"

    return arrange


def _greeting_timed_out() -> smtplib.SMTPServerDisconnected:
    """What smtplib raises when a server takes the connection and says nothing (as one on port 465 does)."""
    err = smtplib.SMTPServerDisconnected("Connection unexpectedly closed: timed out")
    err.__context__ = TimeoutError("timed out")
    return err


def _name_mismatch() -> ssl.SSLCertVerificationError:
    err = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    err.verify_code = 62
    err.verify_message = "Hostname mismatch, certificate is not valid for '127.0.0.1'."
    return err


def test_the_port_465_hint_on_the_russian_test_letter_page(client: t.Any, failing_test_letter: t.Any) -> None:
    url = failing_test_letter(465, _greeting_timed_out())

    russian = post_page(client, url, {"recipient": "postmaster@example.org"}, lang="ru")
    english = post_page(client, url, {"recipient": "postmaster@example.org"}, lang="en")

    assert "Проверка не прошла на этапе «подключение»: истекло время ожидания" in russian
    assert (
        "Порт 465 ждёт SSL (неявный TLS) с первого байта, поэтому сервер ждал TLS, а сайт — его приветствия."
        " Выберите SSL в поле «Защита соединения» или используйте порт 587 со STARTTLS."
    ) in russian
    assert "The check failed at the connection stage: timeout" in english
    assert (
        "Port 465 expects SSL (implicit TLS) from the first byte, so the server waited for TLS while this site waited"
        " for its greeting. Choose SSL as the connection security, or use port 587 with STARTTLS."
    ) in english


def test_the_unreadable_certificate_names_hint_on_the_russian_test_letter_page(
    client: t.Any, failing_test_letter: t.Any
) -> None:
    url = failing_test_letter(free_port(), _name_mismatch())  # nothing listens: the names cannot be read

    russian = post_page(client, url, {"recipient": "postmaster@example.org"}, lang="ru")
    english = post_page(client, url, {"recipient": "postmaster@example.org"}, lang="en")

    # The OS's words about the certificate are data: quoted as they came.
    assert (
        "Проверка не прошла на этапе «TLS»: сертификат не прошёл проверку: Hostname mismatch, certificate is not"
        " valid for '127.0.0.1'."
    ) in russian
    assert (
        "Сертификат сервера выдан не для 127.0.0.1. Введите имя хоста, которое провайдер указывает для SMTP (то, что"
        " названо в сертификате), а не IP-адрес или псевдоним."
    ) in russian
    assert (
        "The server's certificate is not issued for 127.0.0.1. Enter the host name the provider documents for SMTP"
        " (the one the certificate names), not an IP address or an alias."
    ) in english


def test_a_real_test_letter_shows_its_hint_in_russian(
    admin_site: AdminSite, client: t.Any, starttls_server: SMTPServer
) -> None:
    with admin_site.app.app_context():
        account = admin_site.ext.add_account(
            password=PASSWORD,
            check=False,
            sender_email="hello@example.com",
            host=starttls_server.host,
            port=starttls_server.port,
            security="ssl",
            auth="login",
            login=LOGIN,
        )
        url = f"{ADMIN}/accounts/test-letter/?id={account.id}"

    russian = post_page(client, url, {"recipient": "postmaster@example.org"}, lang="ru")

    assert "Проверка не прошла на этапе «TLS»: ошибка TLS:" in russian
    assert f"Порт {starttls_server.port} отвечает открытым текстом, а не TLS" in russian
    assert "answers in plain text" not in russian and "tls failed" not in russian


@pytest.mark.one_database
def test_every_hint_is_read_on_a_page_by_a_test() -> None:
    """A new hint in hints.py needs its scenario here."""
    source = (PACKAGE / "hints.py").read_text(encoding="utf-8")
    keys = set(re.findall(r'Text\(\s*"([a-z0-9-]+)"', source))
    tested = {m.key for m in MISTAKES} | {"starttls-on-port-465", "certificate-other-name"}
    assert keys == tested


# --- OAuth2 token errors and signing in --------------------------------------------------


TOKEN_ERRORS = {
    "consent": (
        "нет согласия: никто не разрешил этому приложению отправлять почту от имени ящика. Ответ сервера токенов:"
        " invalid_grant: AADSTS65001:",
        "Согласие должен дать администратор: центр администрирования Microsoft Entra > Регистрация приложений >"
        " приложение > Разрешения API > Предоставить согласие администратора",
        "consent is missing: nobody has allowed this app to send mail for the mailbox. The token endpoint replied:"
        " invalid_grant: AADSTS65001:",
        "An administrator must grant consent: Microsoft Entra admin center > App registrations > the app > API"
        " permissions > Grant admin consent (SMTP.Send for sign-in, or Office 365 Exchange Online SMTP.SendAsApp for"
        " app-only); then sign in again.",
    ),
    "expired_secret": (
        "срок действия секрета клиента истёк. Ответ сервера токенов: invalid_client: AADSTS7000222:",
        "Проверьте ID клиента и поле «Клиент (tenant)» и введите действующий секрет клиента (новый создаётся в"
        " центре администрирования Microsoft Entra > Регистрация приложений > приложение > Сертификаты и"
        " секреты). Вводите значение секрета, а не его идентификатор.",
        "the client secret has expired. The token endpoint replied: invalid_client: AADSTS7000222:",
        "Check the client id and tenant, and enter a valid client secret (create a new one in Microsoft Entra admin"
        " center > App registrations > the app > Certificates & secrets). Enter the secret's value, not its id.",
    ),
    "unknown_tenant": (
        "клиент (tenant) не найден. Ответ сервера токенов: invalid_request: AADSTS90002: Tenant 'nope' not found.",
        "Введите идентификатор каталога (клиента) или домен клиента (tenant), как они указаны на странице «Обзор»"
        " регистрации приложения.",
        "the tenant was not found. The token endpoint replied: invalid_request: AADSTS90002: Tenant 'nope' not found.",
        "Enter the directory (tenant) id or the tenant's domain as shown on the app registration's Overview page.",
    ),
}


@pytest.mark.parametrize("failing", sorted(TOKEN_ERRORS))
def test_a_token_error_and_its_fix_read_in_russian(
    admin_site: AdminSite, client: t.Any, certs: Certs, microsoft: OAuthServer, failing: str
) -> None:
    ru_reason, ru_fix, en_reason, en_fix = TOKEN_ERRORS[failing]
    microsoft.failing = failing
    with SMTPServer(**_starttls(certs, xoauth2=microsoft.xoauth2)) as server:
        russian = post_page(client, f"{ADMIN}/accounts/new/", oauth2_form(server), lang="ru")
        english = post_page(client, f"{ADMIN}/accounts/new/", oauth2_form(server), lang="en")
        assert server.auth_attempts == []

    assert f"Учётная запись не сохранена. Проверка не прошла на этапе «токен доступа»: {ru_reason}" in russian
    assert ru_fix in russian
    assert "OAuth2 token request failed" not in russian and en_fix[:30] not in russian
    assert f"The account was not saved. The check failed at the access token stage: {en_reason}" in english
    assert en_fix in english
    assert accounts(admin_site) == []


def _back_from_provider(client: t.Any, server: SMTPServer, microsoft: OAuthServer) -> str:
    """Press "Sign in with Microsoft" on a new account's form; the provider signs in at once: the callback URL."""
    microsoft.auto_approve = True
    page = client.get(f"{ADMIN}/accounts/new/").get_data(as_text=True)
    form = oauth2_form(server, oauth_flow="delegated", oauth_tenant="", login="")
    started = client.post(f"{ADMIN}/accounts/oauth2/sign-in/", data={**form, "csrf_token": csrf_token(page)})
    assert started.status_code == 302, started.get_data(as_text=True)

    class Stop(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: t.Any, **kwargs: t.Any) -> None:
            return None

    with pytest.raises(urllib.error.HTTPError) as redirected:
        urllib.request.build_opener(Stop).open(started.location, timeout=5)
    with redirected.value as response:
        return str(response.headers["Location"])


def test_sign_in_errors_read_in_russian(
    admin_site: AdminSite, client: t.Any, certs: Certs, microsoft: OAuthServer
) -> None:
    client.set_cookie("lang", "ru")
    with SMTPServer(**_starttls(certs, xoauth2=microsoft.xoauth2)) as server:
        forged = get_page(client, f"{ADMIN}/accounts/oauth2/callback/?code=c&state={'x' * 43}", lang="ru")

        state = dict(
            urllib.parse.parse_qsl(
                urllib.parse.urlsplit(_back_from_provider(client, server, microsoft)).query
            )
        )["state"]
        declined = get_page(
            client,
            f"{ADMIN}/accounts/oauth2/callback/?"
            + urllib.parse.urlencode(
                {"state": state, "error": "access_denied", "error_description": "The user declined."}
            ),
            lang="ru",
        )

        back = _back_from_provider(client, server, microsoft)
        microsoft.failing = "bad_code"
        refused = get_page(client, back, lang="ru")

    assert (
        "Вход не удался: Этот ответ провайдера не соответствует ни одному входу, начатому в этом браузере (он"
        " подделан или уже использован). Ничего не сохранено; начните вход заново из формы учётной записи."
    ) in forged
    # The provider's own words are data.
    assert (
        "Вход не удался: Провайдер не выполнил вход (access_denied: The user declined.). Ничего не сохранено."
        in declined
    )
    assert (
        "Вход не удался: код авторизации отклонён (уже использован, истёк или не совпадает проверочный код PKCE)."
        " Ответ сервера токенов: invalid_grant: AADSTS70000: The provided value for the 'code' parameter is not"
        " valid."
    ) in refused
    assert "Подсказка: Начните вход заново из формы учётной записи." in refused
    assert accounts(admin_site) == []


def test_a_refused_code_says_so_in_english(
    admin_site: AdminSite, client: t.Any, certs: Certs, microsoft: OAuthServer
) -> None:
    with SMTPServer(**_starttls(certs, xoauth2=microsoft.xoauth2)) as server:
        back = _back_from_provider(client, server, microsoft)
        microsoft.failing = "bad_code"
        english = get_page(client, back, lang="en")

    assert (
        "Signing in failed: the authorization code was refused (used already, expired, or the PKCE verifier does not"
        " match). The token endpoint replied: invalid_grant: AADSTS70000: The provided value for the 'code' parameter"
        " is not valid."
    ) in english
    assert "Hint: Start the sign-in again from the account form." in english


# --- the message log -------------------------------------------------------------------------------


def test_resending_and_the_attempts_read_in_russian(
    admin_site: AdminSite, client: t.Any, make_smtp_server: t.Any
) -> None:
    server = make_smtp_server(handler_hooks=Refuse("DATA", "451 4.3.0 Try later", times=1))
    with admin_site.app.app_context():
        admin_site.ext.add_account(
            check=False,
            sender_email="shop@example.com",
            host=server.host,
            port=server.port,
            security="none",
            auth="none",
        )
        with pytest.raises(DeliveryError) as raised:
            admin_site.site.mail.send(
                Message("Order 1", sender="shop@example.com", recipients=["ann@example.org"], body="x")
            )
    view_url = f"{ADMIN}/messages/{raised.value.record_id}/"

    client.set_cookie("lang", "ru")
    token = csrf_token(client.get(view_url).get_data(as_text=True))
    done = text_of(
        client.post(f"{view_url}resend", data={"csrf_token": token}, follow_redirects=True).get_data(
            as_text=True
        )
    )
    again = text_of(
        client.post(f"{view_url}resend", data={"csrf_token": token}, follow_redirects=True).get_data(
            as_text=True
        )
    )

    assert "Письмо отправлено повторно и доставлено через shop@example.com." in done
    assert (
        "Письмо не отправлено повторно: оно уже отправлено; повторная отправка доставила бы его дважды"
        in again
    )
    assert "deliver it twice" not in again
    # The attempts: what each try came to and the server's reply, in Russian; the size in Russian units.
    assert "ошибка Сбой на этапе «отправка». Ответ сервера: 451 4.3.0 Try later" in again
    assert re.search(r"Размер \d+ Б", again)
    assert len(server.received) == 1


# --- the sentences themselves ------------------------------------------------------------------


@pytest.mark.one_database
def test_a_text_is_its_english_sentence_and_remembers_how_it_was_made() -> None:
    text = Text("ssl-on-plain-port", N_("Port %(port)s answers in plain text"), port=587)

    assert text == "Port 587 answers in plain text" and f"{text}!" == "Port 587 answers in plain text!"
    assert (text.key, text.msgid, text.params) == (
        "ssl-on-plain-port",
        "Port %(port)s answers in plain text",
        {"port": 587},
    )
    copy = pickle.loads(pickle.dumps(text))
    assert isinstance(copy, Text) and copy == text and copy.params == {"port": 587}
    assert Text("plain", N_("100% sure")) == "100% sure"  # no parameters: the template is the text


def _text_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    for path in sorted(p for p in PACKAGE.rglob("*.py") if p.name != "texts.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Text":
                calls.append((str(path.relative_to(ROOT)), node))
    return calls


def _msgid(call: ast.Call) -> str:
    """The msgid of a ``Text(key, N_(msgid), ...)`` call: the test below checks that shape."""
    marked = call.args[1]
    assert isinstance(marked, ast.Call) and isinstance(marked.args[0], ast.Constant), ast.dump(call)
    return t.cast(str, marked.args[0].value)


@pytest.mark.one_database
def test_every_text_of_the_core_is_marked_for_the_catalogue_under_a_key_of_its_own() -> None:
    calls = _text_calls()
    assert len(calls) > 60
    keys = []
    for where, call in calls:
        key, msgid = call.args[0], call.args[1]
        assert isinstance(key, ast.Constant) and isinstance(key.value, str), where
        assert isinstance(msgid, ast.Call) and isinstance(msgid.func, ast.Name) and msgid.func.id == "N_", (
            where,
            key.value,
        )
        keys.append(key.value)
    assert sorted(k for k in set(keys) if keys.count(k) > 1) == []


def _declared_msgids() -> set[str]:
    """The labels, help, choices, groups and units of the declared settings and account fields."""
    found = set()
    for declared in (*specs(SettingsInfo), *specs(AccountInfo)):
        found |= {declared.label, declared.help, *(label for _, label in declared.choices)}
        found |= {text for text in (declared.group, declared.unit) if text and text != OAUTH2}
    return found


@pytest.mark.one_database
def test_the_core_sentences_are_in_both_catalogues_and_translated() -> None:
    """The N_-marked sentences of the core (test_admin.py checks the admin's own strings)."""
    import gettext

    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg
    from babel.messages.pofile import read_po

    with open(ROOT / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    # N_ takes no plural forms, so each message id is one string.
    marked = {
        t.cast(str, m[2]) for m in extract_from_dir(str(ROOT), method_map, options_map, keywords={"N_": None})
    }
    sentences = {_msgid(call) for _, call in _text_calls()}
    assert marked == sentences | _declared_msgids()
    folder = PACKAGE / "translations"
    for lang in ("ru", "en"):
        with open(folder / lang / "LC_MESSAGES" / "smtp_accounts.po", "rb") as po:
            strings = {m.id: t.cast(str, m.string) for m in read_po(po, locale=lang) if m.id and not m.fuzzy}
        assert marked <= set(strings), (lang, marked - set(strings))
        with open(folder / lang / "LC_MESSAGES" / "smtp_accounts.mo", "rb") as mo:
            compiled = gettext.GNUTranslations(mo)
        assert [m for m in marked if compiled.gettext(m) != (strings[m] or m)] == [], (
            f"{lang}: run pybabel compile"
        )
        if lang == "ru":
            assert [m for m in marked if not strings[m]] == []
            # A sentence reads differently in Russian; a label may not ("SSL", "OAuth2", "Google").
            assert [m for m in sentences if strings[m] == m] == []
            placeholders = [
                m
                for m in marked
                if sorted(re.findall(r"%\(\w+\)s", m)) != sorted(re.findall(r"%\(\w+\)s", strings[m]))
            ]
            assert placeholders == []
