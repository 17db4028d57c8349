"""The sending limits in the admin, on the command line and in the provider presets (issue 13, item 4).

The limits themselves are tested in ``test_quotas.py``; here a person sets
them and reads the use of the day against them.
"""

# ruff: noqa: F811 - fixtures imported from other test modules are taken as arguments by name
from __future__ import annotations

import re
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_mail import Message
from helpers import AdminSite
from test_admin import (  # noqa: F401 - client is a fixture
    ADMIN,
    account_form,
    accounts,
    add,
    client,
    get,
    post_form,
    text_of,
)
from test_cli import make_app, run

from flask_smtp_accounts.models import AccountInfo
from flask_smtp_accounts.presets import get_preset
from flask_smtp_accounts.testing import SMTPServer
from flask_smtp_accounts.validation import LIMIT_FIELDS


def send(site: AdminSite, subject: str, *recipients: str, sender: str = "hello@example.com") -> None:
    with site.app.app_context():
        site.site.mail.send(Message(subject, sender=sender, recipients=list(recipients), body="x"))


def test_the_accounts_list_shows_the_use_of_the_last_24_hours_against_the_daily_limits_from_one_query(
    admin_site: AdminSite, client: t.Any, make_smtp_server: t.Any
) -> None:
    server = make_smtp_server()
    daily = add(admin_site, server, limit_per_day=500, recipient_limit_per_day=10)
    hourly = add(admin_site, server, sender_email="news@example.com", limit_per_hour=100)
    free = add(admin_site, server, sender_email="free@example.com")
    send(admin_site, "one", "a@example.org", "b@example.org")
    send(admin_site, "two", "c@example.org")
    send(admin_site, "three", "d@example.org", sender="news@example.com")
    send(admin_site, "four", "e@example.org", sender="free@example.com")
    statements: list[str] = []

    def seen(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        statements.append(statement)

    with admin_site.app.app_context():
        engine = admin_site.site.db.engine
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        page = get(client, f"{ADMIN}/accounts/")
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)

    rows = {
        int(m[0]): text_of(m[1])
        for m in re.findall(r'<tr[^>]*>\s*<td[^>]*>.*?value="(\d+)".*?</td>(.*?)</tr>', page, flags=re.S)
    }
    assert "Today" in text_of(page)
    assert rows[daily].endswith("2 / 500 recipients: 3 / 10")
    assert rows[hourly].endswith(" 1")
    assert rows[free].endswith("—")
    assert len([s for s in statements if "smtp_accounts_quota_usage" in s]) == 1


def test_the_form_saves_the_limits_and_refuses_a_negative_one_next_to_its_field(
    admin_site: AdminSite, client: t.Any, smtp_server: SMTPServer
) -> None:
    form = account_form(
        smtp_server, limit_per_minute="30", recipient_limit_per_day="10000", over_limit="backups"
    )
    response = post_form(client, f"{ADMIN}/accounts/new/?url={ADMIN}/accounts/", form, follow_redirects=True)
    assert response.status_code == 200
    (saved,) = accounts(admin_site)
    assert (
        saved.limit_per_minute,
        saved.limit_per_hour,
        saved.recipient_limit_per_day,
        saved.over_limit,
    ) == (
        30,
        0,
        10_000,
        "backups",
    )

    edit = f"{ADMIN}/accounts/edit/?id={saved.id}"
    page = post_form(client, edit, account_form(smtp_server, limit_per_hour="-5")).get_data(as_text=True)
    assert "The account was not saved. A whole number from 0 (no limit) to 10,000,000." in text_of(page)
    assert accounts(admin_site)[0].limit_per_hour == 0


def test_the_command_line_sets_limits_lists_the_day_and_refuses_a_negative_limit(
    tmp_path: t.Any, encryption_key: str, smtp_server: SMTPServer
) -> None:
    app = make_app(tmp_path / "instance", encryption_key)
    common = [
        "--host",
        smtp_server.host,
        "--port",
        str(smtp_server.port),
        "--security",
        "none",
        "--auth",
        "none",
    ]
    added = run(
        app, "add", "--sender-email", "a@example.com", *common, "--limit-per-day", "200", "--no-check"
    )
    assert added.exit_code == 0, added.output
    refused = run(
        app, "add", "--sender-email", "b@example.com", *common, "--limit-per-minute", "-1", "--no-check"
    )
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        "Error: limit_per_minute: must be a whole number from 0 (no limit) to 10,000,000, not -1"
    )
    edited = run(app, "edit", "1", "--recipient-limit-per-day", "50", "--over-limit", "backups")
    assert edited.exit_code == 0, edited.output

    with app.app_context():
        app.extensions["smtp_accounts"].ext.update_settings(enabled=True)
        app.extensions["mail"].send(
            Message("x", sender="a@example.com", recipients=["p@example.org", "q@example.org"], body="x")
        )
    listing = run(app, "list").output.splitlines()
    assert listing[0].split()[-1] == "Today"
    assert listing[1].endswith("1 / 200, recipients 2 / 50")


@pytest.mark.one_database
def test_presets_set_the_documented_caps_as_the_accounts_limits() -> None:
    def caps(key: str) -> dict[str, t.Any]:
        fields = get_preset(key).fields()
        names = ("limit_per_minute", "limit_per_hour", "limit_per_day", "recipient_limit_per_day")
        return {name: fields[name] for name in names if name in fields}

    assert caps("microsoft-365") == {
        "limit_per_minute": 30,
        "limit_per_hour": 0,
        "limit_per_day": 0,
        "recipient_limit_per_day": 10_000,
    }
    assert caps("google-workspace")["limit_per_day"] == 2000
    assert caps("google-workspace")["recipient_limit_per_day"] == 10_000
    assert caps("gmail")["limit_per_day"] == 500
    assert caps("sendgrid") == {}


@pytest.mark.one_database
def test_the_readme_table_of_limits_mirrors_the_account_fields() -> None:
    from test_readme import section, table_rows

    defaults = AccountInfo.__dataclass_fields__
    assert table_rows(section("Sending limits")) == [
        (name, repr(defaults[name].default)) for name in LIMIT_FIELDS
    ]


# --database-url "": the script's own SQLite files, whatever database the suite runs on.
@pytest.mark.one_database
def test_the_limit_benchmark_runs_and_prints_the_busiest_window(tmp_path: t.Any) -> None:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "quota_window.py"
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            "--workers",
            "2",
            "--limit",
            "5",
            "--seconds",
            "1",
            "--database-url",
            "",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    # How many letters fit in one second depends on the machine; that the limit held does not.
    last = done.stdout.splitlines()[-1]
    prefix = "highest count in any sliding 60 s window of arrivals: "
    assert last.startswith(prefix) and 0 <= int(last.removeprefix(prefix)) <= 5
