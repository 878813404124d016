"""Celery tasks: run one generation, and reap generations whose worker died.

Generation is not idempotent (other text, double GPU cost), so it is never
redelivered: no ``acks_late``, no retries. Claiming a generation is a
conditional update, so a second delivery of the same task does nothing.
Everything is saved through ``webapp.generations``' services.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from celery import shared_task
from celery.signals import worker_shutting_down
from django import db
from django.conf import settings

from webapp.generations.services import (
    INTERRUPTED_DETAIL,
    GenerationRefused,
    generation_claim,
    generation_fail,
    generation_finish,
    generation_reap,
)

from . import relay, runtime
from .generation import Generation, Limits

logger = logging.getLogger(__name__)
T = TypeVar("T")


@shared_task(
    name="inference.tasks.generate",
    acks_late=False,
    ignore_result=True,
    soft_time_limit=3600,
    time_limit=3700,
)
def generate(generation_id: str) -> None:
    try:
        job = generation_claim(generation_id=generation_id)
    except GenerationRefused as exc:
        generation_fail(generation_id=generation_id, code=exc.code, detail=exc.detail)
        error = {"code": exc.code, "detail": exc.detail}
        runtime.run(
            relay.publish_end(generation_id, exc.group, after_seq=0, status="failed", error=error)
        )
        return
    if job is None:
        return
    db.connection.close()  # streaming takes minutes; hold no database connection meanwhile
    generation = Generation(job, Limits.from_settings(settings.GENERATION))
    outcome = runtime.run(generation.run())
    _until_saved(
        lambda: generation_finish(
            generation_id=generation_id, outcome=outcome, endpoint=job.endpoint
        ),
        what=f"generation {generation_id}",
    )
    runtime.run(generation.done())
    logger.info(
        "generation %s ended %s after %s tokens",
        generation_id,
        outcome.status,
        outcome.generated_tokens,
    )


@shared_task(
    name="inference.tasks.reap_generations", ignore_result=True, soft_time_limit=60, time_limit=90
)
def reap_generations() -> int:
    reaped = generation_reap()
    for item in reaped:
        error = {"code": "interrupted", "detail": INTERRUPTED_DETAIL}
        runtime.run(
            relay.publish_end(
                item.generation_id,
                item.group,
                after_seq=item.chunks,
                status="interrupted",
                error=error,
            )
        )
    return len(reaped)


def _until_saved(save: Callable[[], T], *, what: str) -> T:
    """Run ``save``, trying again while PostgreSQL is away, for GENERATION_SAVE_PATIENCE s.

    The reply streamed with no database connection held; its text is only in
    this process (and the token log) until this write lands.
    """
    deadline = time.monotonic() + settings.GENERATION["SAVE_PATIENCE"]
    pause, attempt = 0.2, 0
    while True:
        try:
            return save()
        except (db.OperationalError, db.InterfaceError) as exc:
            db.connection.close()
            attempt += 1
            if time.monotonic() + pause > deadline:
                raise
            if attempt == 1:
                logger.warning(
                    "%s: the database is away (%s); saving again until it is back", what, exc
                )
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


@worker_shutting_down.connect
def _interrupt_after_grace(**_: Any) -> None:
    """A worker told to stop (SIGTERM) takes no new generation and lets running ones go
    on for GENERATION_SHUTDOWN_GRACE seconds; what still runs then ends as interrupted."""
    grace = settings.GENERATION["SHUTDOWN_GRACE"]
    logger.info(
        "worker stopping: %d generations may finish within %.0f s", runtime.running(), grace
    )
    timer = threading.Timer(grace, _interrupt_the_rest)
    timer.daemon = True
    timer.start()


def _interrupt_the_rest() -> None:
    count = runtime.interrupt_all()
    if count:
        logger.warning("worker stopping: %d generations cut off after the grace period", count)
