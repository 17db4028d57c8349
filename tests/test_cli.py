"""``flask smtp-accounts ...`` against real SMTP servers and a real SQLite file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from apps import make_site, stored_rows
from cryptography.fernet import Fernet
from flask import Flask

from flask_smtp_accounts.testing import LOGIN, PASSWORD, Certs, SMTPServer


def make_app(instance: Path, keys: str, **config: Any) -> Flask:
    """A fresh app on the site's database, as each ``flask`` command run would build it."""
    return make_site(instance, enabled=False, SMTP_ACCOUNTS_ENCRYPTION_KEYS=keys, **config).app


@pytest.fixture
def cli_app(tmp_path: Path, encryption_key: str, certs: Certs) -> Flask:
    """A site with routing still off, trusting the test CA."""
    return make_app(tmp_path / "instance", encryption_key, SMTP_ACCOUNTS_CA_FILE=str(certs.ca_cert))


def run(app: Flask, *args: str, **kwargs: Any) -> Any:
    return app.test_cli_runner().invoke(args=["smtp-accounts", *args], **kwargs)


def server_options(server: SMTPServer, security: str = "starttls") -> list[str]:
    return ["--host", server.host, "--port", str(server.port), "--security", security, "--login", LOGIN]


def add(
    app: Flask, server: SMTPServer, *extra: str, email: str = "hello@example.com", security: str = "starttls"
) -> Any:
    result = run(
        app,
        "add",
        "--sender-email",
        email,
        *server_options(server, security),
        "--password-env",
        "SMTP_PASSWORD",
        *extra,
        env={"SMTP_PASSWORD": PASSWORD},
    )
    assert result.exit_code == 0, result.output + result.stderr
    return result


def assert_one_line_error(result: Any, *fragments: str) -> None:
    """One line of error, and at most a line of hint after it."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("Hint: ")), result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_add_with_password_from_environment_then_list(cli_app: Flask, starttls_server: SMTPServer) -> None:
    result = add(cli_app, starttls_server, "--sender-name", "Shop")

    assert (
        f"Added account 1: Shop <hello@example.com> via 127.0.0.1:{starttls_server.port} (starttls)"
        in result.output
    )
    assert [(a.login, a.success) for a in starttls_server.auth_attempts] == [(LOGIN, True)]
    listing = run(cli_app, "list").output.splitlines()
    assert listing[0].split() == [
        "ID",
        "Active",
        "Sender",
        "name",
        "Email",
        "Server",
        "Port",
        "Security",
        "Auth",
        "Login",
        "Backups",
        "Today",
    ]
    assert listing[1].split() == [
        "1",
        "yes",
        "Shop",
        "hello@example.com",
        "127.0.0.1",
        str(starttls_server.port),
        "starttls",
        "login",
        LOGIN,
        "-",
        "-",
    ]


def test_add_reads_password_from_hidden_prompt(
    cli_app: Flask, tmp_path: Path, ssl_server: SMTPServer
) -> None:
    result = run(
        cli_app,
        "add",
        "--sender-email",
        "hello@example.com",
        *server_options(ssl_server, "ssl"),
        input=PASSWORD + "\n",
    )

    assert result.exit_code == 0, result.output + result.stderr
    assert "Password:" in result.output
    assert PASSWORD not in result.output
    assert ssl_server.auth_attempts[-1].success
    stored = stored_rows(cli_app, "select password_encrypted from smtp_accounts_account")[0][
        "password_encrypted"
    ]
    assert stored and PASSWORD not in stored


def test_password_is_never_an_argument(cli_app: Flask, starttls_server: SMTPServer) -> None:
    result = run(
        cli_app,
        "add",
        "--sender-email",
        "hello@example.com",
        *server_options(starttls_server),
        "--password",
        PASSWORD,
    )

    assert result.exit_code == 2
    assert "No such option '--password'" in result.stderr


def test_failed_check_is_one_line_and_saves_nothing(cli_app: Flask, starttls_server: SMTPServer) -> None:
    result = run(
        cli_app,
        "add",
        "--sender-email",
        "hello@example.com",
        *server_options(starttls_server),
        "--password-env",
        "SMTP_PASSWORD",
        env={"SMTP_PASSWORD": "wrong"},
    )

    assert_one_line_error(result, "login failed", "535")
    assert run(cli_app, "list").output.startswith("No SMTP accounts yet")


def test_untrusted_certificate_is_refused(
    tmp_path: Path, encryption_key: str, starttls_server: SMTPServer
) -> None:
    app = make_app(tmp_path / "instance", encryption_key)  # no CA file: the test CA is not trusted
    result = run(
        app,
        "add",
        "--sender-email",
        "hello@example.com",
        *server_options(starttls_server),
        "--password-env",
        "SMTP_PASSWORD",
        env={"SMTP_PASSWORD": PASSWORD},
    )

    assert_one_line_error(result, "tls failed", "certificate verification failed")


def test_invalid_field_names_the_field(cli_app: Flask, starttls_server: SMTPServer) -> None:
    result = run(
        cli_app,
        "add",
        "--sender-email",
        "not an address",
        *server_options(starttls_server),
        "--password-env",
        "SMTP_PASSWORD",
        env={"SMTP_PASSWORD": PASSWORD},
    )

    assert_one_line_error(result, "sender_email:", "not a valid email address")


def test_missing_password_variable(cli_app: Flask, starttls_server: SMTPServer) -> None:
    result = run(
        cli_app,
        "add",
        "--sender-email",
        "hello@example.com",
        *server_options(starttls_server),
        "--password-env",
        "NOT_SET_ANYWHERE",
        env={"NOT_SET_ANYWHERE": None},
    )

    assert_one_line_error(result, "NOT_SET_ANYWHERE is not set")


def test_edit_keeps_the_stored_password(cli_app: Flask, starttls_server: SMTPServer) -> None:
    add(cli_app, starttls_server)

    result = run(cli_app, "edit", "1", "--sender-name", "Newsletter", "--inactive")

    assert result.exit_code == 0, result.output + result.stderr
    assert "Saved account 1: Newsletter <hello@example.com>" in result.output
    assert [a.success for a in starttls_server.auth_attempts] == [True, True]
    assert run(cli_app, "list").output.splitlines()[1].split()[:3] == ["1", "no", "Newsletter"]


def test_edit_with_a_new_wrong_password_changes_nothing(cli_app: Flask, starttls_server: SMTPServer) -> None:
    add(cli_app, starttls_server)

    result = run(cli_app, "edit", "1", "--sender-name", "Changed", "--ask-password", input="wrong\n")

    assert_one_line_error(result, "login failed")
    assert run(cli_app, "check", "1").exit_code == 0
    assert "Changed" not in run(cli_app, "list").output


def test_unknown_account_is_one_line(cli_app: Flask) -> None:
    for command in (
        ["edit", "7", "--host", "x"],
        ["delete", "7", "--yes"],
        ["check", "7"],
        ["test-letter", "7"],
    ):
        assert_one_line_error(run(cli_app, *command), "There is no SMTP account with id 7")


def test_delete(cli_app: Flask, starttls_server: SMTPServer) -> None:
    add(cli_app, starttls_server)

    result = run(cli_app, "delete", "1", input="y\n")

    assert result.exit_code == 0, result.output
    assert "Deleted account 1: hello@example.com" in result.output
    assert run(cli_app, "list").output.startswith("No SMTP accounts yet")


def test_check_reports_success_and_failure(cli_app: Flask, starttls_server: SMTPServer) -> None:
    add(cli_app, starttls_server)

    ok = run(cli_app, "check", "1")
    assert ok.exit_code == 0
    assert ok.output.startswith("OK: connected and logged in.")

    starttls_server.stop()
    failed = run(cli_app, "check", "1")
    assert_one_line_error(failed, "connect failed via account 1")


def test_test_letter_reaches_the_recipient(cli_app: Flask, starttls_server: SMTPServer) -> None:
    add(cli_app, starttls_server, "--sender-name", "Shop")

    result = run(cli_app, "test-letter", "1", "--to", "admin@example.org")

    assert result.exit_code == 0, result.output + result.stderr
    received = starttls_server.wait_for(1)[0]
    assert received.rcpt_tos == ["admin@example.org"]
    assert received.login == LOGIN
    assert received.message["From"] == "Shop <hello@example.com>"
    assert received.message_id in result.output


def test_test_letter_without_recipient_says_where_to_set_one(
    cli_app: Flask, starttls_server: SMTPServer
) -> None:
    add(cli_app, starttls_server)

    assert_one_line_error(run(cli_app, "test-letter", "1"), "no recipient")
    assert starttls_server.received == []


def test_route_preview_shows_the_original_example(
    cli_app: Flask, starttls_server: SMTPServer, make_smtp_server: Any, certs: Certs
) -> None:
    newsletter = make_smtp_server(
        tls="ssl", cert=(certs.server_cert, certs.server_key), auth=(LOGIN, PASSWORD)
    )
    add(cli_app, starttls_server, email="hello@34web.example")
    add(cli_app, newsletter, "--sender-name", "Marketing 34web", email="hello@34web.example", security="ssl")
    assert run(cli_app, "settings", "set", "enabled=true").exit_code == 0

    everyday = run(cli_app, "route", "hello@34web.example")
    bulk = run(cli_app, "route", "Marketing 34web <hello@34web.example>", "--bulk")
    other = run(cli_app, "route", "nobody@34web.example")

    assert everyday.output.splitlines() == [
        f"account 2: Marketing 34web <hello@34web.example> via 127.0.0.1:{newsletter.port} (ssl)",
        "rule: the matching account with the largest id",
        "candidates: 2, 1",
    ]
    assert bulk.output.splitlines()[0].startswith("account 2: Marketing 34web")
    assert bulk.output.splitlines()[1].startswith("rule: bulk letter")
    assert other.output.splitlines()[0] == "Flask-Mail's own MAIL_* settings"

    assert run(cli_app, "edit", "2", "--inactive").exit_code == 0
    assert (
        run(cli_app, "route", "Marketing 34web <hello@34web.example>", "--bulk")
        .output.splitlines()[0]
        .startswith(f"account 1: hello@34web.example via 127.0.0.1:{starttls_server.port}")
    )


def test_route_preview_when_routing_is_off(cli_app: Flask, starttls_server: SMTPServer) -> None:
    add(cli_app, starttls_server)

    result = run(cli_app, "route", "hello@example.com")

    assert result.output.splitlines() == [
        "Flask-Mail's own MAIL_* settings",
        "rule: routing is disabled in the settings: Flask-Mail's own MAIL_* settings",
    ]


def test_settings_show_and_set(cli_app: Flask) -> None:
    before = run(cli_app, "settings", "show").output
    assert [line.split() for line in before.splitlines()[1:4]] == [
        ["enabled", "false"],
        ["save_logs", "true"],
        ["log_level", "2"],
    ]

    changed = run(
        cli_app, "settings", "set", "enabled=yes", "timeout_s=20", "test_recipient=admin@example.org"
    )

    assert changed.exit_code == 0, changed.output + changed.stderr
    assert changed.output.splitlines() == [
        "enabled = true",
        "timeout_s = 20",
        "test_recipient = admin@example.org",
    ]
    after = {
        line.split()[0]: line.split()[1] for line in run(cli_app, "settings", "show").output.splitlines()[1:]
    }
    assert after["enabled"] == "true"
    assert after["timeout_s"] == "20"


def test_bad_setting_changes_nothing(cli_app: Flask) -> None:
    result = run(cli_app, "settings", "set", "enabled=true", "log_level=9")

    assert_one_line_error(result, "log_level: must be a whole number from 1 to 4")
    assert run(cli_app, "settings", "show").output.splitlines()[1].split() == ["enabled", "false"]
    assert run(cli_app, "settings", "set", "enabled").exit_code == 2


def test_rotate_key(tmp_path: Path, certs: Certs, starttls_server: SMTPServer) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    ca = str(certs.ca_cert)
    site = tmp_path / "instance"
    add(make_app(site, old, SMTP_ACCOUNTS_CA_FILE=ca), starttls_server)

    result = run(make_app(site, f"{new},{old}", SMTP_ACCOUNTS_CA_FILE=ca), "rotate-key")
    assert result.exit_code == 0, result.output + result.stderr
    assert result.output.startswith("Re-encrypted 1 password(s)")

    only_new = make_app(site, new, SMTP_ACCOUNTS_CA_FILE=ca)
    assert run(only_new, "check", "1").exit_code == 0
    assert starttls_server.auth_attempts[-1].success

    only_old_removed = make_app(site, Fernet.generate_key().decode(), SMTP_ACCOUNTS_CA_FILE=ca)
    assert_one_line_error(run(only_old_removed, "check", "1"), "cannot be decrypted")


def test_logs_list_show_tail_and_clear(cli_app: Flask, starttls_server: SMTPServer) -> None:
    add(cli_app, starttls_server)
    assert run(cli_app, "check", "1").exit_code == 0

    listing = run(cli_app, "logs", "list").output.splitlines()
    assert any(line.split()[:2] == ["1", "check"] and "check_admin_smtp_1.log" in line for line in listing), (
        listing
    )

    shown = run(cli_app, "logs", "show", "1", "check")
    assert shown.exit_code == 0, shown.stderr
    assert "STARTTLS" in shown.output
    assert PASSWORD not in shown.output
    tail = run(cli_app, "logs", "tail", "1", "check", "-n", "2").output.splitlines()
    assert tail == shown.output.splitlines()[-2:]

    cleared = run(cli_app, "logs", "clear", "1")
    assert cleared.output.strip() == "Deleted the check log of account 1."
    assert_one_line_error(run(cli_app, "logs", "show", "1", "check"), "There is no check log for account 1.")
    assert_one_line_error(run(cli_app, "logs", "clear", "1"), "Account 1 has no send or check log.")
    assert run(cli_app, "logs", "show", "1", "other").exit_code == 2


def test_backup_ids(cli_app: Flask, starttls_server: SMTPServer, ssl_server: SMTPServer) -> None:
    add(cli_app, starttls_server)
    add(cli_app, ssl_server, security="ssl", email="other@example.com")

    assert run(cli_app, "edit", "1", "--backup-ids", "2").exit_code == 0
    assert run(cli_app, "list").output.splitlines()[1].split()[-2] == "2"
    assert_one_line_error(
        run(cli_app, "edit", "1", "--backup-ids", "1"), "backup_ids: an account cannot be its own backup"
    )
    assert run(cli_app, "edit", "1", "--backup-ids", "").exit_code == 0
    assert run(cli_app, "list").output.splitlines()[1].split()[-2] == "-"
