"""The site the scale-out benchmark's Celery workers run: ``celery -A celery_worker_app worker``.

Built from the JSON in :data:`SPEC_VARIABLE` (``folder``, ``database``,
``relay_port``, ``broker``) on the same database as the benchmark's own app,
as a worker on another machine would be.
"""

from __future__ import annotations

import json
import os

from bench_apps import routed_app, smtp_accounts
from celery import Celery

from flask_smtp_accounts.celery_tasks import init_celery

SPEC_VARIABLE = "SMTP_ACCOUNTS_BENCH_CELERY_SITE"

if SPEC_VARIABLE in os.environ:
    spec = json.loads(os.environ[SPEC_VARIABLE])
    # Not named ``app``: ``celery -A`` takes an attribute of that name for the Celery app.
    flask_app = routed_app(
        spec["folder"], "127.0.0.1", spec["relay_port"], database=spec["database"], account={}
    )
    celery = Celery("bench", broker=spec["broker"])
    celery.conf.update(broker_connection_retry_on_startup=True, worker_prefetch_multiplier=1)
    init_celery(celery, smtp_accounts, app=flask_app)
