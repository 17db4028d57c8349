"""Provider presets (issue 14, item 4): the table, and ``--preset`` on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from apps import make_site
from flask import Flask

from flask_smtp_accounts.presets import PRESETS, SEE_PROVIDER, get_preset

#: The providers the issue names; each must have a preset.
REQUIRED = (
    "Gmail",
    "Google Workspace",
    "Microsoft 365",
    "Outlook.com",
    "Yahoo",
    "iCloud",
    "Zoho",
    "Yandex",
    "Mail.ru",
    "Fastmail",
    "Amazon SES",
    "SendGrid",
    "Mailgun (US)",
    "Mailgun (EU)",
    "Postmark",
    "Brevo",
    "Mailjet",
    "SMTP2GO",
)


def run(app: Flask, *args: str, **kwargs: Any) -> Any:
    return app.test_cli_runner().invoke(args=["smtp-accounts", *args], **kwargs)


def stored(app: Flask) -> list[Any]:
    with app.app_context():
        ext = app.extensions["smtp_accounts"].ext
        return [a.to_info() for a in ext.Account.query.order_by(ext.Account.id)]


def make_app(tmp_path: Path, encryption_key: str) -> Flask:
    return make_site(tmp_path / "instance", enabled=False, SMTP_ACCOUNTS_ENCRYPTION_KEYS=encryption_key).app


@pytest.mark.one_database
def test_every_named_provider_has_a_preset_with_a_link_and_limits() -> None:
    names = [p.name for p in PRESETS]
    for provider in REQUIRED:
        assert any(name.startswith(provider) for name in names), provider
    assert len({p.key for p in PRESETS}) == len(PRESETS)
    for preset in PRESETS:
        assert preset.secrets_url.startswith("https://"), preset.key
        assert preset.limits and preset.login_hint, preset.key
    assert get_preset("microsoft-365").limits.startswith("30 messages a minute per mailbox")
    assert "end of December 2026" in (get_preset("microsoft-365").deadline or "")
    assert get_preset("gmail").limits != SEE_PROVIDER and get_preset("google-workspace").limits.startswith(
        "2,000"
    )
    assert get_preset("sendgrid").limits == SEE_PROVIDER, "no figure where none is documented for sure"


def add(app: Flask, options: str) -> Any:
    """``flask smtp-accounts add`` with these options, unchecked, the password from the environment."""
    result = run(app, "add", *options.split(), "--no-check", "--password-env", "KEY", env={"KEY": "secret"})
    assert result.exit_code == 0, result.output + result.stderr
    return result


def test_add_with_a_preset_fills_the_server_and_the_fixed_login(tmp_path: Path, encryption_key: str) -> None:
    app = make_app(tmp_path, encryption_key)
    result = add(app, "--preset sendgrid --sender-email shop@example.com")
    assert "SendGrid: login: The login is the word apikey" in result.output
    assert "https://app.sendgrid.com/settings/api_keys" in result.output
    [account] = stored(app)
    found = (account.host, account.port, account.security, account.auth, account.login)
    assert found == ("smtp.sendgrid.net", 587, "starttls", "login", "apikey")


def test_options_given_win_over_the_preset_and_the_region_picks_the_host(
    tmp_path: Path, encryption_key: str
) -> None:
    app = make_app(tmp_path, encryption_key)
    add(
        app,
        "--preset amazon-ses --region eu-west-1 --port 465 --security ssl --sender-email a@example.com --login SMTPUSER",
    )
    [account] = stored(app)
    assert (account.host, account.port, account.security) == (
        "email-smtp.eu-west-1.amazonaws.com",
        465,
        "ssl",
    )

    # Another host: the stored password is not sent there, so it is given again.
    result = run(
        app,
        "edit",
        "1",
        "--preset",
        "yandex",
        "--no-check",
        "--password-env",
        "NEW_PASSWORD",
        env={"NEW_PASSWORD": "app-password"},
    )
    assert result.exit_code == 0, result.output + result.stderr
    [account] = stored(app)
    assert (account.host, account.port, account.security, account.login) == (
        "smtp.yandex.ru",
        465,
        "ssl",
        "SMTPUSER",
    )


def test_a_wrong_region_or_no_host_is_one_line_of_error(tmp_path: Path, encryption_key: str) -> None:
    app = make_app(tmp_path, encryption_key)
    result = run(
        app,
        "add",
        "--preset",
        "amazon-ses",
        "--region",
        "mars-1",
        "--sender-email",
        "a@example.com",
        "--no-check",
    )
    assert result.exit_code == 1
    assert "Amazon SES has no region 'mars-1'; choose one of: us-east-1" in result.stderr
    result = run(app, "add", "--sender-email", "a@example.com", "--no-check")
    assert result.exit_code == 2
    assert "Missing option '--host' (or a --preset that sets it)." in result.stderr
    assert stored(app) == []
