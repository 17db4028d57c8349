"""The benchmark script runs end to end (``--quick``) and reports every figure.

Only the shape of the report is checked: no figure and no time is asserted.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"

TARGETS = {
    "single letter, 10 ms away: routed / plain Flask-Mail": "<= 1.03",
    "sender CPU per letter: routed / floor": "<= 1.3",
    "choose_account: 1,000 / 10 accounts (mixed)": "<= 1.5",
    "newsletter loop: logs level 2 / logs off": "<= 1.1",
    "newsletter loop: logs level 4 / logs off": "<= 1.3",
    "memory growth over 200 letters (tracemalloc peak)": "< 20",
    "memory growth over 200 letters (RSS)": "< 20",
    "bulk: Flask-Mail loop (plain) / outbox": ">= 10",
    "bulk: outbox / floor (computed)": "<= 1.5",
}

BULK_INFO = {
    "bulk: Flask-Mail loop (routed) / outbox",
    "bulk: outbox drain alone / floor (computed)",
    "bulk: outbox / floor (smtplib threads)",
    "bulk: outbox, pipelining on / off",
    "bulk: drain alone / one round trip a letter (computed)",
    "bulk: Flask-Mail loop (routed) / outbox, a commit a letter",
    "bulk: outbox, a commit a letter / floor (computed)",
}

BULK_FIGURES = {
    "Flask-Mail loop, routed",
    "Flask-Mail loop, plain",
    "floor (smtplib threads)",
    *(
        f"outbox, {way}{phase}"
        for way in ("pipelining on", "pipelining off", "stored in batches of 500")
        for phase in ("", ": store", ": drain")
    ),
}

INFO = {
    "single letter, 10 ms away: plain Flask-Mail / floor",
    "single letter, 10 ms away: routed / plain Flask-Mail, sender CPU",
    "single letter on loopback: routed / plain Flask-Mail",
    "single letter on loopback: routed / plain Flask-Mail, sender CPU",
    "newsletter loop: routed / plain Flask-Mail",
    "newsletter loop: routed / floor",
    "newsletter loop: plain Flask-Mail / floor",
    "sender CPU per letter: routed / plain Flask-Mail",
    "choose_account: 1,000 / 10 accounts (cached)",
    "choose_account: 1,000 / 10 accounts (fresh)",
    "newsletter loop: logs level 2 / logs off, sender CPU",
    "newsletter loop: logs level 4 / logs off, sender CPU",
    "3 letters, 10 ms away: routed, pipelining on / off",
    "3 letters, 10 ms away: transactions alone, pipelining on / off",
    *BULK_INFO,
}

FIGURES = [
    {"floor (smtplib)", "plain Flask-Mail", "routed"},
    {"plain Flask-Mail", "routed"},
    {"floor (smtplib)", "plain Flask-Mail", "routed"},
    {f"{size} accounts, {mode}" for size in ("10", "100", "1,000") for mode in ("mixed", "cached", "fresh")},
    {"logs off", "logs level 2", "logs level 4"},
    set(),
    {f"{way}, pipelining {on}" for way in ("routed", "transactions alone") for on in ("on", "off")},
    BULK_FIGURES,
]


def passes(target: dict) -> bool:
    """Whether a target's value meets its limit, by the comparison its target names."""
    comparison, value, limit = target["target"].split()[0], target["value"], target["limit"]
    return {"<=": value <= limit, "<": value < limit, ">=": value >= limit}[comparison]


def run_quick(tmp_path: Path, *options: str) -> tuple[str, dict]:
    """Run the script with tiny counts; its printout and its JSON."""
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--sink", "aiosmtpd", "--out", str(out), *options],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert f"JSON written to {out}" in done.stdout
    return done.stdout, json.loads(out.read_text())


def test_quick_run_prints_the_table_and_writes_every_figure_as_json(tmp_path: Path) -> None:
    printed, data = run_quick(tmp_path)
    assert "sink: aiosmtpd (subprocess) on 127.0.0.1:" in printed
    assert "site database: " in printed
    assert "variants interleaved" in printed
    assert "Ratios and targets" in printed
    for label in TARGETS:
        line = next((row for row in printed.splitlines() if row.strip().startswith(label)), None)
        assert line is not None, f"no table row for {label!r}"
        assert line.rstrip().endswith(("PASS", "MISS")), line

    assert data["meta"]["quick"] is True
    assert data["meta"]["relay_delay_ms_each_way"] == 5
    assert data["meta"]["sink"] == "aiosmtpd (subprocess)"
    assert {item["figure"]: item["target"] for item in data["targets"]} == TARGETS
    assert {item["figure"] for item in data["info"]} == INFO
    for item in data["targets"] + data["info"]:
        assert isinstance(item["value"], float) and math.isfinite(item["value"]), item
        assert item["min"] <= item["value"] <= item["max"], item
    for item in data["targets"]:
        assert item["passed"] is passes(item)

    assert [set(section["figures"]) for section in data["sections"]] == FIGURES
    for section in data["sections"]:
        for stats in section["figures"].values():
            assert stats["n"] == 2
            assert 0 < stats["min"] <= stats["q1"] <= stats["median"] <= stats["q3"] <= stats["max"]


def test_only_the_relayed_letter_with_another_delay(tmp_path: Path) -> None:
    printed, data = run_quick(tmp_path, "--only", "relay", "--delay-ms", "1")
    assert "measuring relay..." in printed
    assert "measuring newsletter..." not in printed
    assert "through a relay 1 ms each way (2 ms round trip)" in printed
    assert data["meta"]["parts"] == ["relay"]
    assert data["meta"]["relay_delay_ms_each_way"] == 1
    assert [item["figure"] for item in data["targets"]] == [
        "single letter, 2 ms away: routed / plain Flask-Mail"
    ]
    assert set(data["sections"][0]["figures"]) == {"floor (smtplib)", "plain Flask-Mail", "routed"}


def test_the_outbox_part_reports_loop_outbox_and_floor_with_their_targets(tmp_path: Path) -> None:
    printed, data = run_quick(tmp_path, "--only", "outbox", "--bulk-letters", "5", "--bulk-rounds", "1")
    assert "8. bulk through the outbox: 5 letters to one account" in printed
    assert "(one round trip: 10 ms)" in printed
    assert "drain timed step by step" in printed
    assert data["meta"]["parts"] == ["outbox"]
    assert {item["figure"]: item["target"] for item in data["targets"]} == {
        label: target for label, target in TARGETS.items() if label.startswith("bulk: ")
    }
    assert all(item["passed"] is passes(item) for item in data["targets"])
    assert {item["figure"] for item in data["info"]} == BULK_INFO
    (section,) = data["sections"]
    assert set(section["figures"]) == BULK_FIGURES
    assert all(stats["n"] == 1 for stats in section["figures"].values())
    floor = section["extra"]["floor (computed): letters x 2 round trips / connections (s)"]
    assert floor == pytest.approx(5 * 2 * 0.010 / 8)
    assert "5 calls" in section["extra"]["  settle (sending -> sent)"]


@pytest.mark.sqlite_only
def test_the_sqlite_journal_opt_in_is_measured_and_named(tmp_path: Path) -> None:
    printed, data = run_quick(tmp_path, "--only", "newsletter", "--sqlite-wal")
    assert "site database: SQLite, one file per app, WAL, synchronous=NORMAL (opt-in)" in printed
    assert data["meta"]["database"] == "SQLite, one file per app, WAL, synchronous=NORMAL (opt-in)"
    assert [item["figure"] for item in data["targets"]] == ["sender CPU per letter: routed / floor"]


def test_the_breakdown_counts_each_letters_statements_and_commits(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT.with_name("breakdown.py")), "--letters", "5", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout
    assert "per letter in the routed loop (5 letters in one block):" in printed
    listed = printed.split("per letter in the routed loop", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    counts = {name: count for count, name in (line.split(None, 1) for line in listed)}
    # The promise, as the engine's listeners see it: a row ahead and its update, each committed.
    assert counts["INSERT INTO smtp_accounts_message"] == "1.000"
    assert counts["UPDATE smtp_accounts_message SET"] == "1.000"
    assert counts["commits"] == "2.000"
    assert "routed / floor" in printed
