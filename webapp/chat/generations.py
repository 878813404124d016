"""Services the generation worker and the reaper call to move a reply through its states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from inference import relay
from inference.backends import Endpoint
from inference.generation import Job, Outcome
from inference.params import ParamsError, params_parse
from webapp.catalog.selectors import endpoint_choose

from .models import Message, Status
from .selectors import message_context

INTERRUPTED_DETAIL = "The reply was cut off because its worker stopped. Regenerate to try again."


class GenerationRefused(Exception):
    """The reply cannot start; ``detail`` says why in words for the user."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def generation_start(*, message_id: str) -> Job | None:
    """Claim a queued reply for this worker and return what to generate.

    Returns None when the reply is no longer queued (stopped, or claimed by a
    second delivery of the same task), so running the task twice is harmless.
    """
    message = Message.objects.select_related("conversation__model").filter(pk=message_id).first()
    if message is None or message.status != Status.QUEUED:
        return None
    model = message.conversation.model
    try:
        params = params_parse(
            model.default_params, backend=model.backend, context_length=model.context_length
        )
    except ParamsError as exc:
        if not _claim(message_id, params={}):
            return None
        raise GenerationRefused("invalid_params", f"The model is misconfigured: {exc}") from exc
    if not _claim(message_id, params=params.as_dict()):
        return None
    endpoint = endpoint_choose(model=model)
    if endpoint is None:
        raise GenerationRefused("no_endpoint", "This model has no server configured right now.")
    return Job(
        generation_id=str(message.pk),
        group=message.conversation.group,
        endpoint=Endpoint(
            kind=model.backend,
            url=endpoint.url,
            api_key=endpoint.api_key,
            model=model.backend_model,
        ),
        messages=message_context(message=message),
        params=params,
    )


def _claim(message_id: str, *, params: dict[str, object]) -> bool:
    """Move a queued reply to streaming; False if someone else (a stop, a rerun) got there first."""
    return bool(
        Message.objects.filter(pk=message_id, status=Status.QUEUED).update(
            status=Status.STREAMING, started_at=timezone.now(), params=params
        )
    )


def generation_finish(*, message_id: str, outcome: Outcome) -> None:
    """Save the reply's text and stats (even if the reaper gave up on it meanwhile)."""
    Message.objects.filter(pk=message_id).update(
        content=outcome.text,
        status=outcome.status,
        finish_reason=outcome.finish_reason,
        prompt_tokens=outcome.prompt_tokens,
        generated_tokens=outcome.generated_tokens,
        time_to_first_token_ms=outcome.time_to_first_token_ms,
        tokens_per_second=outcome.tokens_per_second,
        backend_model_id=outcome.model_id[:300],
        error_code=outcome.error_code,
        error_detail=outcome.error_detail,
        finished_at=timezone.now(),
    )


def generation_fail(*, message_id: str, code: str, detail: str) -> None:
    Message.objects.filter(pk=message_id).update(
        status=Status.FAILED, error_code=code, error_detail=detail, finished_at=timezone.now()
    )


@dataclass(frozen=True)
class Reaped:
    message_id: str
    group: str
    chunks: int


def generation_reap(*, now: datetime | None = None) -> list[Reaped]:
    """Mark replies whose worker is gone as ``interrupted``, keeping the text logged so far.

    A streaming reply is gone when its heartbeat has lapsed; a queued one when
    no worker claimed it within GENERATION_QUEUED_TIMEOUT.
    """
    now = now or timezone.now()
    limits = settings.GENERATION
    grace = now - timedelta(seconds=limits["HEARTBEAT_TTL"])
    stale_queue = now - timedelta(seconds=limits["QUEUED_TIMEOUT"])
    candidates = list(
        Message.objects.filter(
            Q(status=Status.STREAMING, started_at__lt=grace)
            | Q(status=Status.QUEUED, created_at__lt=stale_queue)
        ).select_related("conversation")
    )
    alive = relay.heartbeats_alive([str(m.pk) for m in candidates])
    reaped = []
    for message in candidates:
        if str(message.pk) in alive:
            continue
        text, chunks = relay.log_text(str(message.pk))
        updated = Message.objects.filter(pk=message.pk, status=message.status).update(
            status=Status.INTERRUPTED,
            content=text,
            finished_at=now,
            error_code="interrupted",
            error_detail=INTERRUPTED_DETAIL,
        )
        if updated:
            reaped.append(Reaped(str(message.pk), message.conversation.group, chunks))
    return reaped
