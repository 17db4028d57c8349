"""The site a test's Celery workers run: ``celery -A celery_site worker`` (see ``celery_workers.py``).

Built, as a site's own ``tasks.py`` would be, from the same instance folder
and database as the test's site, described by the JSON in
:data:`celery_workers.SITE_VARIABLE`: ``instance``, ``config`` (the app
config) and ``broker`` (the Redis URL).
"""

from __future__ import annotations

import json
import os
import pathlib

from apps import make_site
from celery import Celery
from celery_workers import SITE_VARIABLE

from flask_smtp_accounts.celery_tasks import init_celery

spec = json.loads(os.environ[SITE_VARIABLE])
site = make_site(pathlib.Path(spec["instance"]), enabled=False, **spec["config"])
celery = Celery("site", broker=spec["broker"])
celery.conf.update(
    broker_connection_retry_on_startup=True,
    # A pool process takes the next task only when it starts it, so that a stalled one holds no other.
    worker_prefetch_multiplier=1,
)
tasks = init_celery(celery, site.ext, app=site.app)
