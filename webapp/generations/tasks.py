"""Periodic work on the fair queues that is not a generation of its own."""

from __future__ import annotations

from celery import shared_task

from webapp.catalog.endpoints import endpoint_probe_all

from .queue import queue_admit_safely


@shared_task(
    name="webapp.generations.tasks.probe_endpoints",
    ignore_result=True,
    soft_time_limit=30,
    time_limit=60,
)
def probe_endpoints() -> int:
    """Probe every endpoint, and give what came free to the models' queues."""
    models = endpoint_probe_all()
    for model_id in models:
        queue_admit_safely(model_id=model_id)
    return len(models)
