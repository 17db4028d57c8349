"""Celery workers deliver the outbox: a real Redis, real worker processes, real SMTP servers.

The workers are ``celery -A celery_site worker`` processes (one with a
thread pool, one with prefork), built on the same database as the test's
site, as workers on other machines would be. Letters go in through
``ext.outbox()``; the extension hands their row ids to the tasks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import typing as t
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from apps import dialect_name
from celery import Celery
from celery_workers import SITE_VARIABLE, pid_of_client
from flask_mail import Message

from flask_smtp_accounts import CeleryNotConfiguredError, letters_queued
from flask_smtp_accounts.celery_tasks import DEFAULT_BATCH, CeleryTasks, init_celery
from flask_smtp_accounts.errors import InvalidArgumentError
from flask_smtp_accounts.message_info import INTERRUPTED
from flask_smtp_accounts.models import utcnow
from flask_smtp_accounts.testing import SMTPServer
from flask_smtp_accounts.testing.servers import HOST, free_port
from flask_smtp_accounts.testing.workers import CeleryWorker, RedisServer, redis_server_path, wait_until

#: Letters of the big run (issue 13: 2,000 letters, 2 workers × concurrency 4).
LETTERS = 2000
WORKERS = (("threads", "threads"), ("prefork", "prefork"))
CONCURRENCY = 4
#: How long the workers have to deliver every letter on a machine shared with other work.
DELIVERY_DEADLINE_S = 300
SENDERS = ("a@example.com", "b@example.com")
#: Workers on several machines share a database server. A SQLite file has one writer: eight worker
#: processes at once run past its busy timeout ("database is locked").
on_a_database_server = pytest.mark.skipif(
    dialect_name() == "sqlite",
    reason="workers on several machines share a database server; this run is on SQLite",
)
TESTS = Path(__file__).parent


# --- the broker and the workers ---
@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One ``redis-server`` for the session; skipped only when it is missing and ``CI`` is unset."""
    if redis_server_path() is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing; .ci/run installs it (Debian: apt-get install redis-server)")
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def broker(redis_server: RedisServer) -> str:
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def tasks(site: t.Any, broker: str) -> Iterator[CeleryTasks]:
    """The test site wired to the broker: its outbox blocks hand their letters to the workers."""
    celery = Celery("site", broker=broker)
    celery.conf.broker_connection_retry_on_startup = True
    yield init_celery(celery, site.ext, app=site.app)
    celery.close()


@pytest.fixture
def start_worker(site: t.Any, broker: str, tmp_path: Path) -> Iterator[t.Callable[..., CeleryWorker]]:
    """``start_worker(name, pool, concurrency=4)``: a worker process for the test's site, stopped at the end.

    Its log is printed at the end, so that a failing test shows it.
    """
    started: list[CeleryWorker] = []
    spec = {
        "instance": site.app.instance_path,
        "broker": broker,
        "config": {
            name: site.app.config[name]
            for name in ("SQLALCHEMY_DATABASE_URI", "SMTP_ACCOUNTS_ENCRYPTION_KEYS", "SMTP_ACCOUNTS_CA_FILE")
        },
    }

    def start(name: str, pool: str, concurrency: int = CONCURRENCY) -> CeleryWorker:
        worker = CeleryWorker(
            "celery_site",
            name,
            pool=pool,
            concurrency=concurrency,
            logdir=tmp_path,
            path=[TESTS, TESTS.parent],
            env={SITE_VARIABLE: json.dumps(spec)},
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    for worker in started:
        print(worker.output())


# --- what the site holds ---
def rows(site: t.Any) -> list[dict[str, t.Any]]:
    with site.db.engine.connect() as conn:
        return [
            dict(row)
            for row in conn.execute(
                sa.text("SELECT id, status, account_id, message_id FROM smtp_accounts_message ORDER BY id")
            ).mappings()
        ]


def unsettled(site: t.Any) -> int:
    """Rows a worker has still to deliver (queued or claimed) or is delivering (sending, within its lease)."""
    return sum(1 for row in rows(site) if row["status"] in ("queued", "claimed", "sending"))


def received_ids(*servers: SMTPServer) -> Counter[str | None]:
    return Counter(got.message_id for server in servers for got in server.received)


def report(site: t.Any, workers: list[CeleryWorker], *servers: SMTPServer) -> t.Callable[[], str]:
    """What a failure report shows: the rows by status, what each server got, the workers' logs."""

    def describe() -> str:
        statuses = Counter(row["status"] for row in rows(site))
        got = [len(server.received) for server in servers]
        return f"rows by status: {dict(statuses)}; servers received {got}\n" + "\n".join(
            worker.output() for worker in workers
        )

    return describe


def send_letters(site: t.Any, count: int, subject: t.Callable[[int], str] = "letter {}".format) -> None:
    """``count`` letters through the outbox, alternating between the two accounts' senders."""
    with site.ext.outbox():
        for number in range(count):
            site.mail.send(
                Message(
                    subject(number),
                    sender=SENDERS[number % 2],
                    recipients=[f"reader{number}@example.org"],
                    body=f"Letter {number}.",
                )
            )


@pytest.fixture
def two_accounts(
    site: t.Any, add_account: t.Any, make_smtp_server: t.Any
) -> t.Callable[..., list[SMTPServer]]:
    """``two_accounts(hooks=None)``: a server and an account for each sender; the servers, in sender order."""

    def make(hooks: t.Any = None) -> list[SMTPServer]:
        servers = [make_smtp_server(handler_hooks=hooks), make_smtp_server()]
        for sender, server in zip(SENDERS, servers, strict=True):
            add_account(server, sender_email=sender)
        # The SMTP logs are not what these tests look at; the workers then write less.
        site.ext.update_settings(save_logs=False)
        return servers

    return make


# --- wiring ---
def test_a_celery_app_without_a_broker_is_refused_and_nothing_is_wired(site: t.Any) -> None:
    celery = Celery("site")

    with pytest.raises(CeleryNotConfiguredError, match="names no broker.*broker_url"):
        init_celery(celery, site.ext, app=site.app)

    assert not [name for name in celery.tasks if name.startswith("smtp_accounts.")]
    assert "smtp_accounts_celery" not in site.app.extensions


def test_a_batch_outside_one_claim_is_refused(site: t.Any) -> None:
    wrongs: tuple[t.Any, ...] = (0, 101, True, "50")  # each refused, whatever its type
    for wrong in wrongs:
        with pytest.raises(InvalidArgumentError, match="batch"):
            init_celery(
                Celery("site", broker=f"redis://{HOST}:{free_port()}/0"), site.ext, app=site.app, batch=wrong
            )
    assert "smtp_accounts_celery" not in site.app.extensions


def test_a_task_given_anything_but_row_ids_claims_nothing(site: t.Any, tasks: CeleryTasks) -> None:
    wrongs: list[t.Any] = ["1,2", [1, "two"], [-1], None]
    for wrong in wrongs:
        with pytest.raises(InvalidArgumentError, match="row id"):
            tasks.deliver_ids(wrong)


@pytest.mark.celery
def test_letters_wait_queued_while_the_broker_is_down_and_a_sweep_sends_them_once(
    site: t.Any, two_accounts: t.Any, start_worker: t.Any, broker: str, caplog: pytest.LogCaptureFixture
) -> None:
    servers = two_accounts()
    down = Celery("site", broker=f"redis://{HOST}:{free_port()}/0")
    down.conf.broker_connection_retry_on_startup = True
    down.conf.broker_connection_timeout = 1
    init_celery(down, site.ext, app=site.app)

    with caplog.at_level(logging.WARNING, logger="flask_smtp_accounts.celery_tasks"):
        send_letters(site, 10)

    assert [row["status"] for row in rows(site)] == ["queued"] * 10
    assert "10 letters stay queued for the next sweep" in caplog.text
    down.close()

    worker = start_worker("sweeper", "threads")
    sender = Celery("site", broker=broker)
    sender.send_task("smtp_accounts.sweep")
    sender.close()
    wait_until(
        lambda: unsettled(site) == 0,
        "the sweep's tasks",
        DELIVERY_DEADLINE_S,
        report(site, [worker], *servers),
    )

    got = received_ids(*servers)
    assert sorted(got.values()) == [1] * 10
    assert set(got) == {row["message_id"] for row in rows(site)}


@pytest.mark.celery
def test_a_newsletter_stored_in_batches_goes_out_group_by_group_while_the_block_is_still_open(
    site: t.Any, two_accounts: t.Any, start_worker: t.Any, tasks: CeleryTasks
) -> None:
    servers = two_accounts()
    worker = start_worker("early", "threads", concurrency=2)
    worker.wait_ready()

    def letters(first: int, count: int) -> None:
        for number in range(first, first + count):
            site.mail.send(
                Message(
                    f"letter {number}", sender=SENDERS[number % 2], recipients=["r@example.org"], body="x"
                )
            )

    with site.ext.outbox(batch=4):
        letters(0, 4)  # the 4th send writes the group and hands it to the worker
        wait_until(
            lambda: sum(len(server.received) for server in servers) == 4,
            "the first group, delivered while the block is open",
            60,
            report(site, [worker], *servers),
        )
        letters(4, 3)  # kept: written and handed out when the block ends

    wait_until(lambda: unsettled(site) == 0, "the last group", 60, report(site, [worker], *servers))
    got = received_ids(*servers)
    assert sorted(got.values()) == [1] * 7
    assert set(got) == {row["message_id"] for row in rows(site)}


@pytest.mark.celery
@on_a_database_server
def test_two_workers_deliver_2000_letters_each_exactly_once(
    site: t.Any, two_accounts: t.Any, tasks: CeleryTasks, start_worker: t.Any
) -> None:
    servers = two_accounts()
    workers = [start_worker(name, pool) for name, pool in WORKERS]

    send_letters(site, LETTERS)

    wait_until(
        lambda: unsettled(site) == 0,
        "every letter settled",
        DELIVERY_DEADLINE_S,
        report(site, workers, *servers),
    )
    stored = rows(site)
    got = received_ids(*servers)
    assert Counter(row["status"] for row in stored) == {"sent": LETTERS}
    assert set(got) == {row["message_id"] for row in stored}
    assert max(got.values()) == 1
    sent_by_account = Counter(row["account_id"] for row in stored)
    assert (
        sorted(sent_by_account.values()) == [len(server.received) for server in servers] == [LETTERS // 2] * 2
    )


class StallOn:
    """aiosmtpd hooks: the end of DATA of the letter with this subject never gets a reply.

    The stalled connection's worker is then known (``peer_port``) and stands
    mid-batch for as long as the test needs, so that its kill lands there.
    """

    def __init__(self, subject: str) -> None:
        self.marker = f"Subject: {subject}\r\n".encode()
        self.reached = threading.Event()
        self.peer_port: int | None = None

    async def handle_DATA(self, server: t.Any, session: t.Any, envelope: t.Any) -> str | None:
        if self.marker not in envelope.original_content:
            return None
        self.peer_port = session.peer[1]
        self.reached.set()
        await asyncio.Event().wait()  # until the connection drops
        return "451 never answered"


@pytest.mark.celery
@on_a_database_server
def test_a_worker_killed_mid_batch_leaves_no_letter_lost_and_none_sent_twice(
    site: t.Any, two_accounts: t.Any, tasks: CeleryTasks, start_worker: t.Any
) -> None:
    stall_at = 10 * DEFAULT_BATCH + 20  # the 21st letter of the 11th task, on the first account
    stall = StallOn("stall")
    servers = two_accounts(hooks=stall)
    # The stalled letter waits for the kill, not for the client's deadline on the server's reply.
    site.ext.update_settings(timeout_s=300)
    # One task at a time each: the worker that stalls holds nothing but the stalled task.
    workers = [start_worker(name, pool, concurrency=1) for name, pool in WORKERS]
    send_letters(site, 20 * DEFAULT_BATCH, lambda n: "stall" if n == stall_at else f"letter {n}")
    ids = [row["id"] for row in rows(site)]
    stalled_batch = ids[10 * DEFAULT_BATCH : 11 * DEFAULT_BATCH]
    stalled_id = ids[stall_at]
    why = report(site, workers, *servers)

    assert stall.reached.wait(DELIVERY_DEADLINE_S), why()
    assert stall.peer_port is not None
    victim = next(w for w in workers if pid_of_client(stall.peer_port, w.pids()) is not None)
    victim.kill()

    held = {row["id"]: row["status"] for row in rows(site) if row["id"] in stalled_batch}
    assert held[stalled_id] == "sending"
    assert [held[i] for i in stalled_batch[21:]] == ["claimed"] * 29  # taken by the dead worker, not sent
    # Their lease runs out (moved back rather than waited for); then a sweep.
    with site.db.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE smtp_accounts_message SET claimed_until = :past WHERE id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"past": utcnow() - timedelta(hours=1), "ids": stalled_batch},
        )
    tasks.sweep.delay()

    wait_until(
        lambda: unsettled(site) == 1 and sum(len(s.received) for s in servers) == len(ids) - 1,
        "every letter but the interrupted one delivered",
        DELIVERY_DEADLINE_S,
        why,
    )
    got = received_ids(*servers)
    stored = rows(site)
    stalled_message_id = next(row["message_id"] for row in stored if row["id"] == stalled_id)
    assert stalled_message_id not in got
    assert sorted(got.values()) == [1] * (len(ids) - 1)
    assert set(got) == {row["message_id"] for row in stored} - {stalled_message_id}
    assert site.ext.get_message(stalled_id).state == INTERRUPTED
    assert Counter(row["status"] for row in stored) == {"sent": len(ids) - 1, "sending": 1}


def test_an_outbox_block_announces_its_letters_once_and_an_outbox_setting_each_letter(
    site: t.Any, two_accounts: t.Any
) -> None:
    two_accounts()
    announced: list[list[int]] = []

    def receiver(app: t.Any, *, ids: list[int]) -> None:
        announced.append(ids)

    with letters_queued.connected_to(receiver, sender=site.app):
        send_letters(site, 3)
        assert announced == [[row["id"] for row in rows(site)]]

        site.ext.update_settings(outbox_all=True)
        for _ in range(2):
            site.mail.send(Message("alone", sender=SENDERS[0], recipients=["reader@example.org"], body="x"))

    assert announced[1:] == [[row["id"]] for row in rows(site)[3:]]
    assert [row["status"] for row in rows(site)] == ["queued"] * 5
