"""Write access to generations: create, claim, finish, fail, stop, reap.

Every origin (chat, compare, arena, api, playground) creates its generations
through ``generation_create``, the one place where access is checked, and
the worker moves them through their states with the other services here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Required, TypedDict, Unpack

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from inference import relay
from inference.backends import ChatMessage, Endpoint
from inference.context import context_fit
from inference.generation import Job, Outcome
from inference.params import ParamsError, params_parse
from webapp.catalog.models import LanguageModel
from webapp.catalog.policy import AccessRefused, Action, access_refusal
from webapp.core.errors import NotFound, ValidationFailed
from webapp.core.ids import is_uuid

from .limits import limits_check, tokens_record
from .models import Generation, Origin, Status, generation_group
from .queue import (
    NO_ENDPOINT_DETAIL,
    QUEUE_TIMEOUT_DETAIL,
    queue_admit_later,
    queue_admit_safely,
    queue_expire,
    queue_place,
    queue_place_sql,
    queue_retry,
)
from .queue import queue_admit_all as queue_admit_all  # the reaper's round, for the task

INTERRUPTED_DETAIL = "The reply was cut off because its worker stopped. Regenerate to try again."

# The access level each origin needs (ARCHITECTURE.md's access model).
ORIGIN_ACTIONS: dict[str, Action] = {
    Origin.CHAT: "chat",
    Origin.COMPARE: "chat",
    Origin.ARENA: "arena",
    Origin.API: "api",
    Origin.PLAYGROUND: "chat",
}


class GenerationRefused(Exception):
    """The generation cannot start; ``detail`` says why in words for the user."""

    def __init__(self, code: str, detail: str, *, group: str = "") -> None:
        super().__init__(detail)
        self.code, self.detail, self.group = code, detail, group


class GenerationRequest(TypedDict, total=False):
    """What asks for a generation: ``generation_prepare``'s arguments."""

    user: Required[Any]
    model: Required[LanguageModel]
    origin: Required[str]
    messages: Sequence[ChatMessage]
    prompt: str | None
    params: Mapping[str, Any] | None
    with_defaults: bool
    group: str
    running: int | None
    started: int | None
    blind: bool


def generation_create(**request: Unpack[GenerationRequest]) -> Generation:
    """Save a queued generation (``generation_prepare`` says what is checked and how the
    arguments read) and enqueue it once the caller's transaction commits."""
    generation = generation_prepare(**request)
    # No savepoint: inside a feature's transaction it would cost two round trips per
    # reply, and only a database error can fail here, which ends that transaction anyway.
    with transaction.atomic(savepoint=False):
        generation_place(generation)
        generation.save(force_insert=True)
    generation_enqueue(generation)
    return generation


def generation_prepare(
    *,
    user: Any,
    model: LanguageModel,
    origin: str,
    messages: Sequence[ChatMessage] = (),
    prompt: str | None = None,
    params: Mapping[str, Any] | None = None,
    with_defaults: bool = True,
    group: str = "",
    running: int | None = None,
    started: int | None = None,
    blind: bool = False,
) -> Generation:
    """Check that the generation may start and return it, neither placed nor saved:
    ``generation_create`` saves it, or a feature that saves it with rows of its own in one
    statement (a chat send) calls ``generation_place`` and ``generation_enqueue`` itself.

    Its input is either chat ``messages`` (trimmed to fit the model's context)
    or a raw ``prompt`` continued as it is (origins ``playground`` and ``api``),
    never both; a prompt takes the backend's raw-completion parameters.
    ``params`` override the model's defaults (``with_defaults=False``: they are
    the whole set, as when a generation is repeated); the result is validated
    against the model's backend and saved exactly as it will be sent. ``group``
    is where its events are announced (default: a group of its own). Access and
    the user's limits are checked here (``running``: their active generations, if the
    caller has counted them already). A ``blind`` generation names neither its model nor
    its stats to the browser until ``generation_unblind``.
    """
    if origin not in ORIGIN_ACTIONS:
        raise ValueError(f"unknown origin {origin!r}")
    if prompt is not None and (messages or origin not in PROMPT_ORIGINS):
        raise ValueError("a raw prompt comes alone, from the playground or the API")
    action = ORIGIN_ACTIONS[origin]
    refusal = access_refusal(user=user, model_or_gate=model, action=action)
    if refusal is not None:
        raise AccessRefused(refusal, model=model, action=action)
    if prompt is not None:
        _check_prompt(prompt, model=model)
    elif not messages:
        raise ValidationFailed("There is nothing to generate from.")
    limits_check(user=user, model=model, running=running, started=started)
    generation_id = uuid.uuid4()
    sent = _params(
        model=model,
        overrides=params or {},
        with_defaults=with_defaults,
        completion=prompt is not None,
    )
    budget = model.context_length - sent.get("max_new_tokens", 0)
    kept = context_fit(list(messages), budget) if messages else []
    return Generation(
        id=generation_id,
        user=user,
        language_model=model,
        origin=origin,
        messages=kept,
        trimmed_messages=len(messages) - len(kept),
        prompt=prompt or "",
        params=sent,
        channel_group=group or generation_group(generation_id),
        blind=blind,
    )


def generation_place(generation: Generation) -> None:
    """Give the generation a slot on one of its model's endpoints if it may start at once
    (else it waits its turn). Run in the transaction that saves it, which holds the
    model's row lock from here to its commit: save it right after."""
    generation_placed(generation, queue_place(model_id=generation.language_model_id))


def generation_place_sql(generation: Generation) -> tuple[str, list[Any]]:
    """Return ``generation_place`` as an SQL expression that gives the endpoint, and its
    parameters (PostgreSQL), for a statement that saves the generation at once; then
    record its answer with ``generation_placed``."""
    return queue_place_sql(generation.language_model_id)


def generation_placed(generation: Generation, endpoint: Any) -> None:
    """Record the endpoint the fair queue gave the generation (None: it waits its turn)."""
    generation.endpoint_id = endpoint
    generation.admitted_at = timezone.now() if endpoint is not None else None


def generation_enqueue(generation: Generation) -> None:
    """Once the saving transaction commits, start the generation if it was given a
    slot, else run an admission round (which also tells it where it stands)."""
    from inference.tasks import generate

    if generation.endpoint_id is not None:
        task = (str(generation.pk), generation_start(generation))
        # The task's header names the generation only: Celery's own copy of the arguments
        # would put the user's text in it, and took about 0.2 ms to write (saferepr).
        generate.apply_async_on_commit(task, argsrepr=repr(task[:1]))
    else:
        queue_admit_later(model_id=generation.language_model_id)


PROMPT_ORIGINS = (Origin.PLAYGROUND, Origin.API)
# A raw prompt longer than this many characters per token of context cannot fit it,
# whatever the tokenizer (``truncate`` keeps its end, within reason).
MAX_PROMPT_CHARS_PER_TOKEN = 8


def _check_prompt(prompt: str, *, model: LanguageModel) -> None:
    if not prompt:
        raise ValidationFailed("There is nothing to generate from: the prompt is empty.")
    if "\x00" in prompt:
        raise ValidationFailed("The prompt contains a NUL character.")
    limit = model.context_length * MAX_PROMPT_CHARS_PER_TOKEN
    if len(prompt) > limit:
        raise ValidationFailed(
            f"The prompt is {len(prompt):,} characters long: at most {limit:,} fit "
            f"{model.display_name}'s context of {model.context_length:,} tokens."
        )


def _params(
    *,
    model: LanguageModel,
    overrides: Mapping[str, Any],
    with_defaults: bool,
    completion: bool = False,
) -> dict[str, Any]:
    defaults = model.default_params if with_defaults else {}
    try:
        parsed = params_parse(
            {**defaults, **overrides},
            backend=model.backend,  # type: ignore[arg-type]
            context_length=model.context_length,
            completion=completion,
        )
    except ParamsError as exc:
        if overrides:
            raise ValidationFailed(str(exc), code="invalid_params") from exc
        raise ValidationFailed(
            f"The model is misconfigured: {exc} Tell the site's staff.", code="invalid_params"
        ) from exc
    return parsed.as_dict()


def generation_claim(*, generation_id: str) -> Job | None:
    """Claim an admitted generation for this worker and return what to stream.

    One statement on PostgreSQL (the claim, its endpoint and what the access
    rule needs), three elsewhere. Returns None when it is no longer waiting for
    a worker (stopped, or claimed by a second delivery of the same task), so
    running the task twice is harmless. Raises GenerationRefused when the
    claimed generation cannot be served.
    """
    claimed = _claim(generation_id)
    if claimed is None:
        return None
    asked, endpoint = claimed.input, claimed.endpoint
    refusal = _refusal(claimed.access)
    if refusal is not None:
        raise GenerationRefused("forbidden", refusal, group=asked.group)
    if endpoint is None:
        raise GenerationRefused("no_endpoint", NO_ENDPOINT_DETAIL, group=asked.group)
    _endpoints[endpoint.id] = endpoint
    return _job(generation_id, asked, endpoint, model_id=str(claimed.access.model_id))


def generation_start(generation: Generation) -> dict[str, Any]:
    """What a worker needs to send a placed generation's request before its claim returns,
    read from the generation as it is saved (its input is frozen at creation); the task
    message carries it. The claim reads the same from the row and has the last word."""
    return {
        "endpoint": str(generation.endpoint_id),
        "model": str(generation.language_model_id),
        "messages": generation.messages,
        "prompt": generation.prompt,
        "params": generation.params,
        "group": generation.channel_group,
        "blind": generation.blind,
        "trimmed": generation.trimmed_messages,
        "context_length": generation.language_model.context_length,
    }


def generation_early(*, generation_id: str, start: Mapping[str, Any]) -> Job | None:
    """The job ``generation_start`` describes, to stream while the claim runs; None when
    this process has not served its endpoint yet (the endpoint, with its key, comes from an
    earlier claim, never from the message) or the message does not read as one."""
    try:
        endpoint = _endpoints.get(start["endpoint"])
        if endpoint is None:
            return None
        asked = _Input(
            messages=start["messages"],
            prompt=start["prompt"],
            params=start["params"],
            group=start["group"],
            blind=bool(start["blind"]),
            trimmed=int(start["trimmed"]),
            context_length=int(start["context_length"]),
        )
        return _job(generation_id, asked, endpoint, model_id=str(start["model"]))
    except (KeyError, TypeError, ValueError, ParamsError):
        return None


# The endpoints this worker process has claimed generations for, by id (with their keys).
_endpoints: dict[str, Endpoint] = {}


def _job(generation_id: str, asked: _Input, endpoint: Endpoint, *, model_id: str) -> Job:
    params = asked.params
    return Job(
        generation_id=generation_id,
        group=asked.group,
        endpoint=endpoint,
        messages=asked.messages,
        prompt=asked.prompt,
        params=params_parse(params, backend=endpoint.kind, completion=bool(asked.prompt)),
        model_id=model_id,
        blind=asked.blind,
        context_budget=asked.context_length - int(params.get("max_new_tokens") or 0),
        trimmed=asked.trimmed,
    )


@dataclass(frozen=True)
class _Access:
    """What the access rule needs, read with the claim: the user, the model, the origin."""

    user_id: Any
    user_active: bool
    user_staff: bool
    model_id: Any
    model_active: bool
    policy: str
    gate_id: Any
    origin: str


def _refusal(access: _Access) -> str | None:
    """The access rule again, as the worker takes the generation (it may have changed).

    The user and model are built from the ids the claim read: the rule reads
    grants and group memberships by id.
    """
    from webapp.accounts.models import User

    user = User(pk=access.user_id, is_active=access.user_active, is_staff=access.user_staff)
    model = LanguageModel(
        pk=access.model_id,
        is_active=access.model_active,
        access_policy=access.policy,
        gate_id=access.gate_id,
    )
    return access_refusal(user=user, model_or_gate=model, action=ORIGIN_ACTIONS[access.origin])


@dataclass(frozen=True)
class _Input:
    """What a generation asks, frozen at its creation: read by its claim, or carried by its
    task message for an early start (``generation_start``)."""

    messages: list[ChatMessage]
    prompt: str
    params: dict[str, Any]
    group: str
    blind: bool
    trimmed: int  # older turns the web app left out to fit the context
    context_length: int


@dataclass(frozen=True)
class _Claimed:
    input: _Input
    endpoint: Endpoint | None
    access: _Access


# Double-quoted names read the same to PostgreSQL and SQLite. Only an admitted
# generation (one the fair queue gave a slot on an endpoint) is claimed.
_CLAIM = """
UPDATE "generations_generation" SET "status" = %s, "started_at" = %s, "updated_at" = %s
WHERE "id" = %s AND "status" = %s AND "admitted_at" IS NOT NULL
RETURNING "language_model_id", "messages", "params", "channel_group", "user_id", "origin",
          "endpoint_id", "prompt", "blind", "trimmed_messages"
"""
_ACCESS = """
SELECT u."is_active", u."is_staff", m."is_active", m."access_policy", m."gate_id",
       m."context_length"
FROM "accounts_user" u, "catalog_languagemodel" m WHERE u."id" = %s AND m."id" = %s
"""
_ENDPOINT = """
SELECT e."id", e."url", e."api_key", m."backend", m."backend_model"
FROM "catalog_modelendpoint" e JOIN "catalog_languagemodel" m ON m."id" = e."model_id"
WHERE e."id" = %s AND e."is_active"
"""
# PostgreSQL claims and reads the endpoint it was admitted to in one statement: one row
# (with NULLs when that endpoint is gone), none when the generation was not waiting.
_CLAIM_WITH_ENDPOINT = (
    "WITH claimed AS ("
    + _CLAIM
    + """)
SELECT c."messages", c."prompt", c."params", c."channel_group",
       c."user_id", u."is_active", u."is_staff", m."id", m."is_active", m."access_policy",
       m."gate_id", c."origin",
       e."id", e."url", e."api_key", m."backend", m."backend_model", c."blind",
       c."trimmed_messages", m."context_length"
FROM claimed c
JOIN "catalog_languagemodel" m ON m."id" = c."language_model_id"
JOIN "accounts_user" u ON u."id" = c."user_id"
LEFT JOIN "catalog_modelendpoint" e ON e."id" = c."endpoint_id" AND e."is_active"
"""
)


def _claim(generation_id: str) -> _Claimed | None:
    """Move an admitted generation to streaming with ``UPDATE … RETURNING``."""
    meta = Generation._meta
    now = meta.get_field("started_at").get_db_prep_value(timezone.now(), connection)
    pk = meta.pk.get_db_prep_value(uuid.UUID(generation_id), connection)
    values = [Status.STREAMING, now, now, pk, Status.QUEUED]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_CLAIM_WITH_ENDPOINT, values)
            row = cursor.fetchone()
            if row is None:
                return None
            endpoint = _endpoint(*row[12:17]) if row[12] is not None else None
            messages, prompt, params, group = row[:4]
            return _claimed(
                messages, prompt, params, group, endpoint, _Access(*row[4:12]), row[17:]
            )
        cursor.execute(_CLAIM, values)
        row = cursor.fetchone()
        if row is None:
            return None
        (model_id, messages, params, group, user_id, origin, endpoint_id, prompt, blind) = row[:9]
        cursor.execute(_ACCESS, [user_id, model_id])
        user_active, user_staff, model_active, policy, gate_id, context_length = cursor.fetchone()
        cursor.execute(_ENDPOINT, [endpoint_id])
        found = cursor.fetchone()
    access = _Access(
        user_id,
        bool(user_active),
        bool(user_staff),
        model_id,
        bool(model_active),
        policy,
        gate_id,
        origin,
    )
    endpoint = _endpoint(*found) if found else None
    return _claimed(
        messages, prompt, params, group, endpoint, access, (blind, row[9], context_length)
    )


def _claimed(
    messages: Any,
    prompt: str,
    params: Any,
    group: str,
    endpoint: Endpoint | None,
    access: _Access,
    rest: tuple[Any, ...],
) -> _Claimed:
    """``rest``: the claim's blind flag, its trimmed count and the model's context length."""
    blind, trimmed, context_length = rest
    asked = _Input(
        _json(messages), prompt, _json(params), group, bool(blind), trimmed, context_length
    )
    return _Claimed(asked, endpoint, access)


def _endpoint(pk: Any, url: str, api_key: str, backend: str, backend_model: str) -> Endpoint:
    return Endpoint(kind=backend, url=url, api_key=api_key, model=backend_model, id=str(pk))  # type: ignore[arg-type]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def generation_finish(*, generation_id: str, outcome: Outcome, endpoint: Endpoint) -> None:
    """Save the generation's text and stats (even if the reaper gave up on it meanwhile).
    Its slot is free then: see generation_release."""
    now = timezone.now()
    Generation.objects.filter(pk=generation_id).update(
        text=outcome.text,
        status=outcome.status,
        finish_reason=outcome.finish_reason,
        prompt_tokens=outcome.prompt_tokens,
        generated_tokens=outcome.generated_tokens,
        time_to_first_token_ms=outcome.time_to_first_token_ms,
        tokens_per_second=outcome.tokens_per_second,
        endpoint_id=endpoint.id or None,
        endpoint_url=endpoint.url[:500],
        backend_model_id=outcome.model_id[:300],
        backend_revision=outcome.revision[:100],
        system_fingerprint=outcome.system_fingerprint[:100],
        rendered_prompt=outcome.rendered_prompt,
        token_details=outcome.tokens,
        error_code=outcome.error_code,
        error_detail=outcome.error_detail,
        finished_at=now,
        updated_at=now,
        **_refit(outcome),
    )
    tokens_record(
        generation_id=generation_id,
        prompt_tokens=outcome.prompt_tokens,
        generated_tokens=outcome.generated_tokens,
    )


def _refit(outcome: Outcome) -> dict[str, Any]:
    """The input fields to save when the worker's token count left out more turns."""
    if outcome.sent_messages is None:
        return {}
    return {"messages": outcome.sent_messages, "trimmed_messages": outcome.trimmed_messages}


def generation_unblind(*, generation_ids: Sequence[Any]) -> int:
    """Let the generations name their model and stats again (their battle was voted), and
    count the tokens of those that ended meanwhile, which their finish left uncounted."""
    blind = Generation.objects.select_for_update().filter(pk__in=generation_ids, blind=True)
    with transaction.atomic():
        hidden = list(blind.only("pk", "status", "prompt_tokens", "generated_tokens"))
        unblinded = Generation.objects.filter(pk__in=[g.pk for g in hidden]).update(
            blind=False, updated_at=timezone.now()
        )
    for generation in hidden:
        if not generation.is_active:
            tokens_record(
                generation_id=str(generation.pk),
                prompt_tokens=generation.prompt_tokens,
                generated_tokens=generation.generated_tokens,
            )
    return unblinded


def generation_release(*, model_id: Any) -> None:
    """A generation of the model ended: give its slot to the next one waiting."""
    queue_admit_safely(model_id=model_id)


def generation_retry(*, generation_id: str, model_id: Any) -> float | None:
    """The backend was too busy to start it (429): queue it again after a backoff,
    and return that backoff; None when it has had all its attempts."""
    backoff = queue_retry(generation_id=generation_id, model_id=model_id)
    if backoff is not None:
        generation_release(model_id=model_id)
    return backoff


def generation_fail(*, generation_id: str, code: str, detail: str) -> None:
    now = timezone.now()
    Generation.objects.filter(pk=generation_id).update(
        status=Status.FAILED, error_code=code, error_detail=detail, finished_at=now, updated_at=now
    )
    model_id = Generation.objects.filter(pk=generation_id).values_list(
        "language_model_id", flat=True
    )
    for pk in model_id:
        generation_release(model_id=pk)


@dataclass(frozen=True)
class Stopped:
    generation: Generation
    before_start: bool  # True: no worker had started it, so nobody else announces the end


def generation_stop(*, user: Any, generation_id: Any) -> Stopped:
    """Stop the user's generation: a queued one ends here, a streaming one in its worker."""
    if not user.is_authenticated or not is_uuid(generation_id):
        raise NotFound("There is no such reply.")
    mine = Generation.objects.filter(pk=generation_id, user=user)
    now = timezone.now()
    ended = mine.filter(status=Status.QUEUED).update(
        status=Status.STOPPED, finish_reason="stopped", finished_at=now, updated_at=now
    )
    generation = mine.first()
    if generation is None:
        raise NotFound("There is no such reply.")
    if ended:
        generation_release(model_id=generation.language_model_id)
    elif generation.status == Status.STREAMING:
        relay.cancel_request(str(generation.pk))
    return Stopped(generation=generation, before_start=bool(ended))


def _requeue_admitted() -> None:
    """Enqueue again every admitted generation no worker has claimed (their tasks are
    lost with Redis); those still waiting for a slot have no task to lose."""
    from inference.tasks import generate

    admitted = Generation.objects.filter(status=Status.QUEUED, admitted_at__isnull=False)
    for generation_id in admitted.values_list("pk", flat=True):
        generate.delay(str(generation_id))


@dataclass(frozen=True)
class Reaped:
    generation_id: str
    group: str
    chunks: int


def generation_reap(*, now: datetime | None = None) -> list[Reaped]:
    """Mark generations whose worker is gone as ``interrupted``, keeping the text logged so far.

    A streaming generation is gone when its heartbeat has lapsed (and Redis has
    held heartbeats for longer than their TTL: one that came back empty has lost
    the live ones too); an admitted one when no worker claimed it within
    GENERATION_QUEUED_TIMEOUT. After Redis came back empty, every admitted
    generation is enqueued again (a claim is conditional: a second task for the
    same generation does nothing).
    """
    now = now or timezone.now()
    limits = settings.GENERATION
    grace = now - timedelta(seconds=limits["HEARTBEAT_TTL"])
    stale_queue = now - timedelta(seconds=limits["QUEUED_TIMEOUT"])
    held_for, emptied = relay.redis_memory_age()
    if emptied:
        _requeue_admitted()
    lost = Q(status=Status.QUEUED, admitted_at__lt=stale_queue)
    if held_for >= limits["HEARTBEAT_TTL"]:
        lost |= Q(status=Status.STREAMING, started_at__lt=grace)
    candidates = list(Generation.objects.filter(lost).only("id", "status", "channel_group"))
    alive = relay.heartbeats_alive([str(g.pk) for g in candidates])
    reaped = []
    for generation in candidates:
        if str(generation.pk) in alive:
            continue
        text, chunks = relay.log_text(str(generation.pk))
        updated = Generation.objects.filter(pk=generation.pk, status=generation.status).update(
            status=Status.INTERRUPTED,
            text=text,
            finished_at=now,
            updated_at=now,
            error_code="interrupted",
            error_detail=INTERRUPTED_DETAIL,
        )
        if updated:
            reaped.append(Reaped(str(generation.pk), generation.channel_group, chunks))
    return reaped


@dataclass(frozen=True)
class Expired:
    generation_id: str
    group: str
    error: dict[str, str]


def generation_expire(*, now: datetime | None = None) -> list[Expired]:
    """Fail the generations that waited in their queue past GENERATION_QUEUE_TIMEOUT."""
    error = {"code": "queue_timeout", "detail": QUEUE_TIMEOUT_DETAIL}
    expired = queue_expire(now=now or timezone.now())
    return [Expired(generation_id, group, error) for generation_id, group in expired]
