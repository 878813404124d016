"""The Celery application: Redis broker, tasks found in the apps and in inference/."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.production")

app = Celery("gatehouse")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["inference"])
app.autodiscover_tasks(["webapp.arena.battles"])


@worker_ready.connect
@worker_process_init.connect
def _freeze_heap(**kwargs: object) -> None:
    """Freeze what the started worker holds (webapp/core/heap.py)."""
    from webapp.core import heap

    heap.freeze()
