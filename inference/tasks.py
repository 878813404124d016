"""Celery tasks: run one generation, and reap generations whose worker died.

Generation is not idempotent (other text, double GPU cost), so it is never
redelivered: no ``acks_late``, no retries. Claiming a generation is a
conditional update, so a second delivery of the same task does nothing.
Everything is saved through ``webapp.generations``' services.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from celery import shared_task
from celery.signals import worker_shutting_down
from django import db
from django.conf import settings

from webapp.generations.services import (
    INTERRUPTED_DETAIL,
    GenerationRefused,
    generation_claim,
    generation_early,
    generation_expire,
    generation_fail,
    generation_finish,
    generation_reap,
    generation_release,
    generation_retry,
    queue_admit_all,
)

from . import relay, runtime
from .generation import Generation, Job, Limits, Outcome

logger = logging.getLogger(__name__)
T = TypeVar("T")


@shared_task(
    name="inference.tasks.generate",
    acks_late=False,
    ignore_result=True,
    soft_time_limit=3600,
    time_limit=3700,
)
def generate(generation_id: str, start: dict[str, Any] | None = None) -> None:
    """Claim the generation and stream it. With ``start`` (what the web process knew as it
    saved it) the request goes out while the claim runs, and its tokens wait for it."""
    early = _EarlyStart.begin(generation_id, start) if start else None
    try:
        job = _claim(generation_id, early)
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
    if early is not None and (outcome := early.claimed(job)) is not None:
        generation = early.generation
    else:  # no early start, or the claim read otherwise (an endpoint edited since)
        generation = Generation(job, Limits.from_settings(settings.GENERATION))
        outcome = runtime.run(generation.run())
    if outcome.overloaded_at_start() and _retried(job):
        return
    _until_saved(
        lambda: generation_finish(
            generation_id=generation_id, outcome=outcome, endpoint=job.endpoint
        ),
        what=f"generation {generation_id}",
    )
    runtime.run(generation.done())
    generation_release(model_id=job.model_id)
    logger.info(
        "generation %s ended %s after %s tokens",
        generation_id,
        outcome.status,
        outcome.generated_tokens,
    )


@dataclass
class _EarlyStart:
    """A generation streaming on the relay loop before its claim; its tokens wait for it."""

    generation: Generation
    gate: concurrent.futures.Future[bool]
    running: concurrent.futures.Future[Outcome]

    @classmethod
    def begin(cls, generation_id: str, start: dict[str, Any]) -> _EarlyStart | None:
        job = generation_early(generation_id=generation_id, start=start)
        if job is None:
            return None
        gate: concurrent.futures.Future[bool] = concurrent.futures.Future()
        generation = Generation(job, Limits.from_settings(settings.GENERATION), claimed=gate)
        return cls(generation, gate, runtime.start(generation.run()))

    def claimed(self, job: Job) -> Outcome | None:
        """The claim said yes: let the tokens out and return how it went, if the claim read
        the same job (else drop it and return None)."""
        if job != self.generation.job:
            self.drop()
            return None
        self.gate.set_result(True)
        return self.running.result()

    def drop(self) -> None:
        """The claim said no (or failed): nothing read goes out, and the request ends."""
        self.gate.set_result(False)
        self.running.cancel()


def _claim(generation_id: str, early: _EarlyStart | None) -> Job | None:
    """Claim the generation; an early start the claim does not let through is dropped."""
    try:
        job = generation_claim(generation_id=generation_id)
    except BaseException:
        if early is not None:
            early.drop()
        raise
    if job is None and early is not None:
        early.drop()
    return job


def _retried(job: Job) -> bool:
    """Put a generation the backend was too busy to start back in its queue; return
    whether it went back (False: its attempts are spent, and it fails)."""
    backoff = generation_retry(generation_id=job.generation_id, model_id=job.model_id)
    if backoff is None:
        return False
    admit_queue.apply_async((job.model_id,), countdown=backoff)
    logger.info("generation %s: backend overloaded, again in %.1f s", job.generation_id, backoff)
    return True


@shared_task(name="inference.tasks.admit_queue", ignore_result=True, soft_time_limit=30)
def admit_queue(model_id: str) -> None:
    """Run an admission round for the model (after a backoff, for instance)."""
    generation_release(model_id=model_id)


@shared_task(
    name="inference.tasks.reap_generations", ignore_result=True, soft_time_limit=60, time_limit=90
)
def reap_generations() -> int:
    """Mark the generations whose worker is gone, fail those that waited too long, and
    run an admission round for every model with generations waiting."""
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
    for expired in generation_expire():
        runtime.run(
            relay.publish_end(
                expired.generation_id,
                expired.group,
                after_seq=0,
                status="failed",
                error=expired.error,
            )
        )
    queue_admit_all()
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
