"""Flask-Mail's own test suite passes with the extension installed, routing off and on.

Runs ``scripts/flask-mail-tests`` once for both settings. It needs
Flask-Mail 0.10.0's tests, which its sdist on PyPI does not ship: they come
from ``$FLASK_MAIL_SOURCE`` (a checkout at 0.10.0) or from GitHub's archive
of the tag. Without either, both tests are skipped with the script's reason.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

# Flask-Mail's suite runs in a subprocess whose sites are always SQLite files (the plugin sets the URL).
pytestmark = pytest.mark.one_database

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "flask-mail-tests"
UNAVAILABLE = 3
HEADER = re.compile(
    r"^=== Flask-Mail \S+'s tests, flask-smtp-accounts installed, routing (on|off) ===$", re.M
)


@pytest.fixture(scope="module")
def suite_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The script's printout for each routing setting."""
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--routing",
            "off,on",
            "--work-dir",
            str(tmp_path_factory.mktemp("flask-mail")),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode == UNAVAILABLE:
        pytest.skip(done.stderr.strip())
    parts = HEADER.split(done.stdout)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("routing", ["off", "on"])
def test_flask_mail_own_tests_pass_with_the_extension_installed(
    suite_runs: dict[str, str], routing: str
) -> None:
    printed = suite_runs[routing]
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", printed, re.M)
    assert not failed, f"routing {routing}: Flask-Mail's tests failing: {failed}"
    summary = re.findall(r"^=+ (\d+) passed in [\d.]+s =+$", printed, re.M)
    assert summary and int(summary[-1]) > 0, printed[-2000:]
    if routing == "on":
        assert re.search(r"letters sent \(message_sent\): .*\d+ through an account", printed), printed[-2000:]
