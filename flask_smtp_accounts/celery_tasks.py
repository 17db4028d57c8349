"""Celery tasks that deliver the outbox from any number of workers on any number of machines.

:func:`init_celery` registers two tasks on a site's Celery app:

* ``smtp_accounts.deliver_ids`` takes a list of message-log row ids, and
  nothing else: the letters stay in the database, which every worker shares,
  so a message on the broker is a few bytes and never holds a body, an
  address or a secret. It calls :meth:`SMTPAccounts.deliver_ids`, whose claim
  (``FOR UPDATE SKIP LOCKED``, or a conditional UPDATE on SQLite) lets one
  worker only take each row: the same ids handed out twice (a sweep beside the
  outbox's own hand-out, a task the broker gave again) are delivered once.
* ``smtp_accounts.sweep`` hands the due ids (:meth:`SMTPAccounts.queued_ids`)
  to ``deliver_ids`` tasks in batches: for Celery beat or a cron, it picks up
  whatever no task took (a broker that was down, a lease that ran out).

After an outbox block the extension sends :data:`~.signals.letters_queued`
with the ids it stored; the receiver connected here hands them to tasks at
once. The tasks run inside the Flask app's context, the way Flask's Celery
pattern does it (a task base class pushing ``app.app_context()``).

A worker killed mid-batch: its task is not acknowledged (``acks_late``), so
the broker gives it again (``reject_on_worker_lost`` for a pool process that
died); the rows it had claimed come back when their lease ends; the letter
it was sending shows as interrupted and is never sent again by itself.
"""

from __future__ import annotations

import dataclasses
import logging
import typing as t
from collections.abc import Iterable, Sequence

from flask import Flask, current_app, has_app_context

from .errors import CeleryNotConfiguredError, InvalidArgumentError
from .ids import parse_id
from .outbox import MAX_BATCH
from .signals import letters_queued

if t.TYPE_CHECKING:
    from celery import Celery, Task

    from .extension import SMTPAccounts

DELIVER_TASK = "smtp_accounts.deliver_ids"
SWEEP_TASK = "smtp_accounts.sweep"
#: Row ids in one ``deliver_ids`` task: enough to keep a connection busy, few enough that a killed
#: worker holds back little until its lease ends.
DEFAULT_BATCH = 50
#: Due rows one sweep hands out; the next sweep takes the rest.
DEFAULT_SWEEP_LIMIT = 10_000
#: The key of the wiring in ``app.extensions``.
EXTENSION_KEY = "smtp_accounts_celery"

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CeleryTasks:
    """The tasks :func:`init_celery` registered, and how they hand ids out."""

    deliver_ids: Task[[list[int]], t.Any]
    sweep: Task[[], t.Any]
    batch: int

    def hand_out(self, ids: Sequence[int]) -> int:
        """Send ``ids`` to ``deliver_ids`` tasks, ``batch`` a task; the number of tasks sent.

        Raises the broker's error (``kombu.exceptions.OperationalError``)
        when it cannot be reached; the rows stay queued in the database.
        """
        tasks = 0
        for start in range(0, len(ids), self.batch):
            self.deliver_ids.apply_async(args=(list(ids[start : start + self.batch]),))
            tasks += 1
        return tasks


def row_ids(ids: t.Any) -> list[int]:
    """The row ids a task was given, checked: a list of ids, each as :func:`~.ids.parse_id` reads it."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise InvalidArgumentError("ids", f"{DELIVER_TASK} takes a list of message log row ids, not {ids!r}")
    parsed = []
    for value in ids:
        number = parse_id(value)
        if number is None:
            raise InvalidArgumentError("ids", f"not a message log row id: {value!r}")
        parsed.append(number)
    return parsed


def init_celery(
    celery_app: Celery,
    ext: SMTPAccounts,
    *,
    app: Flask | None = None,
    batch: int = DEFAULT_BATCH,
    sweep_limit: int = DEFAULT_SWEEP_LIMIT,
) -> CeleryTasks:
    """Register the extension's tasks on ``celery_app`` and hand every outbox block's letters to them.

    ``app`` is the Flask app the tasks run in (default: the current app).
    Raises :class:`~.errors.CeleryNotConfiguredError` when ``celery_app``
    names no broker: letters handed to it would go nowhere.
    """
    app = app or _current_app()
    if "smtp_accounts" not in app.extensions:
        raise RuntimeError("init_celery needs SMTPAccounts initialised on the app first: init_app(app).")
    if EXTENSION_KEY in app.extensions:
        raise RuntimeError("init_celery is already wired for this app; call it once per app.")
    if not (celery_app.conf.broker_write_url or celery_app.conf.broker_url):
        raise CeleryNotConfiguredError(
            "the Celery app names no broker, so no worker would get the letters: set its broker_url"
            " (Celery(broker='redis://...'), celery_app.conf.broker_url, or CELERY_BROKER_URL)"
            " before init_celery"
        )
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise InvalidArgumentError(
            "batch", f"must be a whole number of row ids from 1 to {MAX_BATCH}, not {batch!r}"
        )
    if isinstance(sweep_limit, bool) or not isinstance(sweep_limit, int) or sweep_limit < 1:
        raise InvalidArgumentError("sweep_limit", f"must be a whole number, 1 or more, not {sweep_limit!r}")

    base = _app_context_task(celery_app, app)

    @celery_app.task(
        name=DELIVER_TASK,
        base=base,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
    )
    def deliver_ids(ids: list[int]) -> dict[str, t.Any]:
        """Claim and deliver these rows (those another worker holds or that are done are skipped)."""
        checked = row_ids(ids)
        return dataclasses.asdict(ext.deliver_ids(checked))

    @celery_app.task(name=SWEEP_TASK, base=base, ignore_result=True)
    def sweep(limit: int = sweep_limit, account_id: int | None = None) -> int:
        """Hand the due rows (at most ``limit``, oldest first) to ``deliver_ids`` tasks; the number of tasks."""
        return tasks.hand_out(ext.queued_ids(limit, account_id=account_id))

    tasks = CeleryTasks(deliver_ids=deliver_ids, sweep=sweep, batch=batch)
    app.extensions[EXTENSION_KEY] = tasks
    letters_queued.connect(_hand_out_receiver(tasks), sender=app, weak=False)
    _fresh_connections_in_forked_workers(ext, app)
    return tasks


def _current_app() -> Flask:
    if not has_app_context():
        raise RuntimeError(
            "init_celery needs the Flask app: call it inside app.app_context() or pass app=app."
        )
    return t.cast(Flask, current_app._get_current_object())  # type: ignore[attr-defined]


def _app_context_task(celery_app: Celery, app: Flask) -> type[Task[t.Any, t.Any]]:
    """A task class running its tasks inside ``app``'s context (Flask's Celery pattern)."""

    class AppContextTask(celery_app.Task):  # type: ignore[name-defined,misc]
        def __call__(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
            with app.app_context():
                return super().__call__(*args, **kwargs)

    return AppContextTask


def _hand_out_receiver(tasks: CeleryTasks) -> t.Callable[..., None]:
    """The receiver of :data:`letters_queued`: the ids go to tasks at once.

    A broker that cannot be reached is not the caller's error: its letters
    are stored, and raising would invite it to send them again. They stay
    queued, a warning says so, and the next sweep hands them out.
    """
    from kombu.exceptions import OperationalError

    def receiver(app: Flask, *, ids: Sequence[int], **_: t.Any) -> None:
        try:
            tasks.hand_out(ids)
        except OperationalError as err:
            log.warning(
                "The Celery broker cannot be reached (%s): %d letters stay queued for the next sweep (%s).",
                err,
                len(ids),
                SWEEP_TASK,
            )

    return receiver


def _fresh_connections_in_forked_workers(ext: SMTPAccounts, app: Flask) -> None:
    """Make each forked pool process open its own database connections.

    A connection pooled in the worker's main process before the fork would be
    shared by every child (SQLAlchemy's "using connection pools with
    multiprocessing"): ``dispose(close=False)`` drops them from the child's pool
    without closing the parent's.
    """
    from celery.signals import worker_process_init

    def fresh_pool(**_: t.Any) -> None:
        with app.app_context():
            for engine in ext.db.engines.values():  # type: ignore[union-attr]
                engine.dispose(close=False)

    worker_process_init.connect(fresh_pool, weak=False)
