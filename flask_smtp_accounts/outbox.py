"""The outbox's drainer: queued letters go out over parallel connections, each exactly once.

:func:`deliver_queued` runs ``connections`` threads in this process. Each
thread picks an account with due letters (the one the fewest threads here
work on, then the one with the most letters), claims a batch of that
account's letters (:meth:`MessageLog.claim`, the one claim of every
drainer), and sends them on a dispatcher of its own, so on connections of
its own, one by one (:func:`retry.deliver_claimed`: ``claimed`` →
``sending``, the write-ahead, → settled). It ends when no letter is due.
:func:`deliver_ids` sends exactly the given rows on the calling thread:
what a worker task carries. :func:`queued_ids` lists the due rows for a
sweeper to hand out.

Other processes and machines drain the same queue at once: a claim never
takes a row another holds, and a claim whose drainer died comes back after
its lease (``SMTP_ACCOUNTS_CLAIM_LEASE_S``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import typing as t
from dataclasses import dataclass

from . import retry
from .errors import InvalidArgumentError
from .ids import parse_id

if t.TYPE_CHECKING:
    from .delivery import Dispatcher
    from .state import AppState

#: The most connections one ``deliver_queued`` opens; more is a typo, not a plan.
MAX_CONNECTIONS = 100
#: The most letters a thread claims at once: a short lease's worth, and few to give back if it stops.
MAX_BATCH = 100
#: How long an account whose connection slots are all taken (``max_connections``) is left before
#: a thread asks again; also how long a thread waits when every account with due letters is so.
BUSY_WAIT_S = 0.25

logger = logging.getLogger("flask_smtp_accounts")


@dataclass(frozen=True)
class DeliveryReport:
    """What a drain did."""

    #: Delivered (to every pending recipient, or the rest refused for good).
    sent: int = 0
    #: Given up: a permanent refusal, or the last allowed try failed.
    failed: int = 0
    #: Letters still waiting when it ended (queued, due later, or claimed by another drainer).
    left: int = 0
    #: Seconds it took.
    elapsed_s: float = 0.0
    #: Back in the queue after a temporary failure (with their backoff).
    requeued: int = 0
    #: Claimed, but taken by another drainer after the lease ran out, or not due when asked for.
    skipped: int = 0

    @property
    def per_second(self) -> float:
        """Letters settled a second."""
        done = self.sent + self.failed + self.requeued
        return done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"sent {self.sent}, failed {self.failed}, requeued {self.requeued}, skipped {self.skipped},"
            f" left {self.left}, {self.elapsed_s:.1f} s"
        )


def check_connections(connections: t.Any) -> int:
    """``connections`` as a whole number 1..:data:`MAX_CONNECTIONS`, else :class:`InvalidArgumentError`."""
    if isinstance(connections, bool) or not isinstance(connections, int):
        raise InvalidArgumentError("connections", f"must be a whole number, not {connections!r}")
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise InvalidArgumentError(
            "connections", f"must be between 1 and {MAX_CONNECTIONS}, not {connections}"
        )
    return connections


def check_limit(limit: t.Any) -> int | None:
    """``limit`` as ``None`` (no limit) or a whole number ≥ 0, else :class:`InvalidArgumentError`."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidArgumentError("limit", f"must be a whole number, 0 or more, or None; not {limit!r}")
    return limit


class _Drain:
    """The threads of one :func:`deliver_queued`, and what they share."""

    def __init__(
        self,
        state: AppState,
        app: t.Any,
        connections: int,
        limit: int | None,
        progress: t.Callable[[DeliveryReport], None] | None,
    ) -> None:
        self.state = state
        self.app = app
        self.connections = connections
        self.started = time.monotonic()
        self.progress = progress
        self.waiting = state.message_log.count_waiting()
        self._lock = threading.Lock()
        #: Letters this drain may still claim (``None``: any number).
        self._budget = limit
        #: How many threads of this drain work on each account now.
        self._working: dict[int, int] = {}
        #: Accounts whose connection slots were all taken, and until when (monotonic) they are left.
        self._busy: dict[int, float] = {}
        self.tally = retry.Tally()
        self.errors: list[BaseException] = []
        self.stop = threading.Event()

    def run(self) -> None:
        # Each thread's own "finished" event, not ``Thread.join``: a join interrupted by Ctrl+C
        # (CPython before 3.13, gh-90882) may report the thread ended while it still sends.
        finished = [threading.Event() for _ in range(self.connections)]
        for n, done in enumerate(finished):
            threading.Thread(
                target=self._thread, args=(done,), name=f"smtp-accounts-deliver-{n}", daemon=True
            ).start()
        try:
            for done in finished:
                done.wait()
        except KeyboardInterrupt:
            # Each thread finishes the letter it is sending and gives the rest of its batch back.
            self.stop.set()
            logger.info("flask-smtp-accounts: stopping; the letters being sent finish, the rest go back")
            for done in finished:
                done.wait()
            raise

    def report(self, left: int) -> DeliveryReport:
        tally = self.tally
        return DeliveryReport(
            sent=tally.sent,
            failed=tally.failed,
            requeued=tally.requeued,
            skipped=tally.skipped,
            left=left,
            elapsed_s=time.monotonic() - self.started,
        )

    def _thread(self, done: threading.Event) -> None:
        try:
            with self.app.app_context():
                self._work()
        except BaseException as error:  # noqa: BLE001 - handed to the caller of deliver_queued
            self.errors.append(error)
            self.stop.set()
        finally:
            done.set()

    def _work(self) -> None:
        dispatcher: Dispatcher | None = None
        current: int | None = None
        try:
            while not self.stop.is_set():
                picked = self._pick(current)
                if picked is None:
                    return
                account_id, size = picked
                if account_id < 0:  # every account with due letters is at its connection cap
                    self.stop.wait(BUSY_WAIT_S)
                    continue
                claimed = 0
                try:
                    if account_id != current and dispatcher is not None:
                        dispatcher.close()
                        dispatcher = None
                    if dispatcher is None:
                        dispatcher, current = retry.dispatcher(self.state), account_id
                    if not self._slot_for(dispatcher, account_id):
                        continue
                    claim = self.state.message_log.claim(size, account_id=account_id)
                    claimed = len(claim.ids)
                    tally = retry.deliver_claimed(self.state, dispatcher, claim, stop=self.stop)
                finally:
                    self._done(account_id, size, claimed)
                self._settled(tally)
        finally:
            if dispatcher is not None:
                dispatcher.close()

    def _slot_for(self, dispatcher: Dispatcher, account_id: int) -> bool:
        """Take a connection slot of a capped account before claiming its letters; ``False``: all are taken."""
        account = self.state.directory.account(account_id) if account_id else None
        if account is None or dispatcher.hold_slot(account):
            return True
        logger.info(
            "flask-smtp-accounts: all %s connections of account %s are busy; its letters wait",
            account.max_connections,
            account_id,
        )
        with self._lock:
            self._busy[account_id] = time.monotonic() + BUSY_WAIT_S
        return False

    def _pick(self, current: int | None) -> tuple[int, int] | None:
        """The account this thread works on next and how many of its letters to claim; ``None``: nothing left.

        An account of ``-1``: every account with due letters is at its
        connection cap for now; the thread waits a moment and asks again.
        ``current``: the account whose slot the thread holds, if any, never busy for it.
        """
        due = self.state.message_log.due_accounts()
        with self._lock:
            if not due or self._budget == 0:
                return None
            now = time.monotonic()
            free = [a for a in due if a == current or self._busy.get(a, 0) <= now]
            if not free:
                return -1, 0
            account_id = min(free, key=lambda a: (self._working.get(a, 0), -due[a], a))
            # Share an account's letters among the threads that will work on it.
            share = max(1, math.ceil(self.connections / len(due)))
            size = max(1, min(MAX_BATCH, math.ceil(due[account_id] / share)))
            if self._budget is not None:
                size = min(size, self._budget)
                self._budget -= size
            self._working[account_id] = self._working.get(account_id, 0) + 1
            return account_id, size

    def _done(self, account_id: int, reserved: int, claimed: int) -> None:
        """Give back what a turn reserved and did not claim."""
        with self._lock:
            self._working[account_id] -= 1
            if self._budget is not None:
                self._budget += reserved - claimed

    def _settled(self, tally: retry.Tally) -> None:
        with self._lock:
            self.tally.add(tally)
            if self.progress is not None:
                self.progress(self.report(max(0, self.waiting - self.tally.sent - self.tally.failed)))


def deliver_queued(
    state: AppState,
    app: t.Any,
    *,
    connections: int = 8,
    limit: int | None = None,
    progress: t.Callable[[DeliveryReport], None] | None = None,
) -> DeliveryReport:
    """Send the due letters of the queue over up to ``connections`` connections at once; see the module."""
    drain = _Drain(state, app, check_connections(connections), check_limit(limit), progress)
    drain.run()
    if drain.errors:
        raise drain.errors[0]
    return drain.report(state.message_log.count_waiting())


def deliver_ids(state: AppState, ids: t.Iterable[t.Any]) -> DeliveryReport:
    """Claim exactly these rows (those still due) and send them on this thread's connections.

    Rows another drainer holds, rows not waiting (sent, sending,
    cancelled...) and anything that is no row id are skipped.
    """
    started = time.monotonic()
    given = list(ids)
    wanted = sorted({key for key in (parse_id(i) for i in given) if key is not None})
    log = state.message_log
    claim = log.claim(len(wanted), ids=wanted)
    dispatcher = retry.dispatcher(state)
    try:
        tally = retry.deliver_claimed(state, dispatcher, claim)
    finally:
        dispatcher.close()
    return DeliveryReport(
        sent=tally.sent,
        failed=tally.failed,
        requeued=tally.requeued,
        skipped=tally.skipped + len(given) - len(claim.ids),
        left=log.count_waiting(ids=wanted),
        elapsed_s=time.monotonic() - started,
    )


def queued_ids(state: AppState, limit: int, account_id: int | None = None) -> list[int]:
    """Ids of the due letters, lowest first (``account_id``: only that account's; 0: Flask-Mail's own route)."""
    return state.message_log.due_ids(check_limit(limit) or 0, account_id=account_id)
