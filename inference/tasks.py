"""Celery tasks: run one generation, and reap generations whose worker died.

Generation is not idempotent (other text, double GPU cost), so it is never
redelivered: no ``acks_late``, no retries. Claiming a generation is a
conditional update, so a second delivery of the same task does nothing.
Everything is saved through ``webapp.generations``' services.
"""

from __future__ import annotations

import logging

from celery import shared_task
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
    generation_finish(generation_id=generation_id, outcome=outcome, endpoint=job.endpoint)
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
