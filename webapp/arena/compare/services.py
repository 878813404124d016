"""Write access to compare sessions: start one, send a turn to every column, continue one
column as an ordinary conversation.

A turn is one row: a generation per column (origin ``compare``), created in one
transaction, so a refusal of any column (access, limits, parameters) saves
nothing. The row counts as one request toward the replies a user may have running
(``webapp.generations.limits``): it is counted once, before its columns are created.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from inference.backends import ChatMessage
from webapp.catalog.models import LanguageModel
from webapp.catalog.policy import AccessRefused, access_refusal
from webapp.chat.configure import params_clean
from webapp.chat.library.tree import conversation_from_history
from webapp.chat.models import Conversation
from webapp.chat.services import content_clean
from webapp.core.errors import Conflict, NotFound, ValidationFailed
from webapp.generations.limits import running_count
from webapp.generations.models import ACTIVE_STATUSES, Origin, Status
from webapp.generations.services import generation_create

from .models import CompareColumn, CompareReply, CompareSession, CompareTurn
from .selectors import compare_get

MIN_MODELS, MAX_MODELS = 2, 4
SEED_LIMIT = 2**31  # a seed every backend takes
PARAM_NAMES = ("temperature", "top_p", "max_new_tokens", "seed")
TITLE_LENGTH = 60
# A reply that was cut off or failed stays out of its column's next inputs, as in chat.
_CONTEXT_STATUSES = (Status.DONE, Status.STOPPED)


@dataclass(frozen=True)
class Row:
    turn: CompareTurn
    replies: list[CompareReply]


def compare_start(
    *, user: Any, model_slugs: Sequence[Any], content: Any, params: Any = None
) -> CompareSession:
    """Create a session of 2 to 4 models the user may chat with, and send its first turn.

    ``params`` (temperature, top_p, max_new_tokens, seed) go to every column; a seed is
    chosen when none is given. Bad input raises and saves nothing.
    """
    text = content_clean(content)
    models = _models(user=user, slugs=model_slugs)
    shared = _params(models=models, params=params)
    with transaction.atomic():
        session = CompareSession.objects.create(user=user, title=_title(text), params=shared)
        columns = CompareColumn.objects.bulk_create(
            CompareColumn(session=session, index=i, language_model=m) for i, m in enumerate(models)
        )
        _row(user=user, session=session, columns=columns, turns=[], text=text)
    return session


def compare_send(*, user: Any, session_id: Any, content: Any) -> Row:
    """Send the next turn of the user's session to every column at once.

    Refused as ``busy`` while a reply of the previous turn still runs (each column's
    input holds its own last reply), and as ``forbidden`` when the user may no longer
    use one of the models.
    """
    text = content_clean(content)
    session = compare_get(user=user, session_id=session_id)
    columns = list(session.columns.all())
    turns = list(session.turns.all())
    if any(r.generation.status in ACTIVE_STATUSES for t in turns for r in t.replies.all()):
        raise Conflict(
            "Wait for every column to finish, or stop them, then send again.", code="busy"
        )
    for column in columns:
        _check_access(user=user, model=column.language_model)
    try:
        with transaction.atomic():
            row = _row(user=user, session=session, columns=columns, turns=turns, text=text)
            CompareSession.objects.filter(pk=session.pk).update(updated_at=timezone.now())
    except IntegrityError as exc:  # another send of the same turn got there first
        raise Conflict("This turn was sent already; wait for its replies.", code="busy") from exc
    return row


def compare_continue(*, user: Any, session_id: Any, column_id: Any) -> Conversation:
    """Turn one column into an ordinary conversation with that column's history."""
    session = compare_get(user=user, session_id=session_id)
    column = next((c for c in session.columns.all() if str(c.pk) == str(column_id)), None)
    if column is None:
        raise NotFound("This compare session has no such column.")
    _check_access(user=user, model=column.language_model)
    turns = list(session.turns.all())
    reply = _reply_of(turns[-1], column) if turns else None
    if reply is not None and reply.generation.status in ACTIVE_STATUSES:
        raise Conflict("Wait for this column's reply to finish, or stop it.", code="busy")
    history = [*_history(turns, column, for_input=False)]
    params = params_clean(model=column.language_model, params=session.params)
    return conversation_from_history(
        user=user,
        model=column.language_model,
        title=session.title,
        messages=history,
        params=params,
    )


def _row(
    *,
    user: Any,
    session: CompareSession,
    columns: list[CompareColumn],
    turns: list[CompareTurn],
    text: str,
) -> Row:
    """Create the turn and one generation per column (inside the caller's transaction)."""
    turn = CompareTurn.objects.create(session=session, index=len(turns), content=text)
    running = running_count(user=user)  # the row is one request: counted once, for all
    replies = []
    # Creating a generation locks its model's row until the commit (the fair queue):
    # always in the same order, so two rows of the same models never deadlock.
    for column in sorted(columns, key=lambda c: str(c.language_model_id)):
        messages: list[ChatMessage] = [
            *_history(turns, column, for_input=True),
            {"role": "user", "content": text},
        ]
        generation = generation_create(
            user=user,
            model=column.language_model,
            origin=Origin.COMPARE,
            messages=messages,
            params=session.params,
            group=session.group,
            running=running,
        )
        replies.append(CompareReply(turn=turn, column=column, generation=generation))
    replies.sort(key=lambda r: r.column.index)
    CompareReply.objects.bulk_create(replies)
    return Row(turn=turn, replies=replies)


def _history(
    turns: list[CompareTurn], column: CompareColumn, *, for_input: bool
) -> list[ChatMessage]:
    """The column's conversation so far: each turn, then the column's reply to it.

    For a model's input, replies that failed or were cut off are left out; a
    conversation continued from the column keeps whatever text each one had.
    """
    history: list[ChatMessage] = []
    for turn in turns:
        history.append({"role": "user", "content": turn.content})
        reply = _reply_of(turn, column)
        if reply is None or not reply.generation.text:
            continue
        if for_input and reply.generation.status not in _CONTEXT_STATUSES:
            continue
        history.append({"role": "assistant", "content": reply.generation.text})
    return history


def _reply_of(turn: CompareTurn, column: CompareColumn) -> CompareReply | None:
    return next((r for r in turn.replies.all() if r.column_id == column.pk), None)


def _models(*, user: Any, slugs: Sequence[Any]) -> list[LanguageModel]:
    """Return the chosen models in order, or say what is wrong with the choice."""
    if not isinstance(slugs, list | tuple) or not all(isinstance(s, str) for s in slugs):
        raise ValidationFailed("Choose the models to compare.")
    if len(set(slugs)) != len(slugs):
        raise ValidationFailed("Choose each model once.")
    if not MIN_MODELS <= len(slugs) <= MAX_MODELS:
        raise ValidationFailed(
            f"Choose {MIN_MODELS} to {MAX_MODELS} models to compare ({len(slugs)} chosen)."
        )
    found = {m.slug: m for m in LanguageModel.objects.filter(slug__in=slugs)}
    for slug in slugs:
        if slug not in found:
            raise ValidationFailed(f"There is no model {slug!r}.", code="not_found")
        _check_access(user=user, model=found[slug])
    return [found[slug] for slug in slugs]


def _check_access(*, user: Any, model: LanguageModel) -> None:
    refusal = access_refusal(user=user, model_or_gate=model, action="chat")
    if refusal is not None:
        raise AccessRefused(f"{model.display_name}: {refusal}", model=model, action="chat")


def _params(*, models: list[LanguageModel], params: Any) -> dict[str, Any]:
    """Return the shared overrides, checked against every model's backend, with a seed."""
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise ValidationFailed("The parameters must be an object.", code="invalid_params")
    unknown = sorted(set(params) - set(PARAM_NAMES))
    if unknown:
        raise ValidationFailed(
            f"Unknown parameter(s): {', '.join(unknown)}.", code="invalid_params"
        )
    chosen = {k: v for k, v in params.items() if v is not None}
    if chosen.get("seed") is None:
        chosen["seed"] = secrets.randbelow(SEED_LIMIT)
    elif isinstance(chosen["seed"], int) and chosen["seed"] >= SEED_LIMIT:
        raise ValidationFailed(f"seed must be below {SEED_LIMIT}.", code="invalid_params")
    cleaned: dict[str, Any] = {}
    for model in models:
        try:
            cleaned = params_clean(model=model, params=chosen)
        except ValidationFailed as exc:
            raise ValidationFailed(f"{model.display_name}: {exc.detail}", code=exc.code) from exc
    return cleaned


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"
