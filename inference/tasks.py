"""Celery tasks: run one generation, and reap generations whose worker died.

Generation is not idempotent (other text, double GPU cost), so it is never
redelivered: no ``acks_late``, no retries. Claiming the reply is a conditional
update, so a second delivery of the same task does nothing.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django import db
from django.conf import settings

from webapp.chat.generations import (
    INTERRUPTED_DETAIL,
    GenerationRefused,
    generation_fail,
    generation_finish,
    generation_reap,
    generation_start,
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
def generate(message_id: str) -> None:
    try:
        job = generation_start(message_id=message_id)
    except GenerationRefused as exc:
        generation_fail(message_id=message_id, code=exc.code, detail=exc.detail)
        group = _group_of(message_id)
        runtime.run(
            relay.publish_end(
                message_id,
                group,
                after_seq=0,
                status="failed",
                error={"code": exc.code, "detail": exc.detail},
            )
        )
        return
    if job is None:
        return
    db.connection.close()  # streaming takes minutes; hold no database connection meanwhile
    generation = Generation(job, Limits.from_settings(settings.GENERATION))
    outcome = runtime.run(generation.run())
    generation_finish(message_id=message_id, outcome=outcome)
    runtime.run(generation.done())
    logger.info(
        "generation %s ended %s after %s tokens",
        message_id,
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
                item.message_id,
                item.group,
                after_seq=item.chunks,
                status="interrupted",
                error=error,
            )
        )
    return len(reaped)


def _group_of(message_id: str) -> str:
    from webapp.chat.models import Message, conversation_group

    conversation_id = Message.objects.values_list("conversation_id", flat=True).get(pk=message_id)
    return conversation_group(conversation_id)
