"""Read access to conversations and messages."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from inference.backends import ChatMessage
from inference.generation import STAT_FIELDS
from webapp.catalog.models import LanguageModel
from webapp.core import rows
from webapp.core.errors import NotFound
from webapp.core.ids import is_uuid
from webapp.generations.limits import (
    limits_for,
    running_count_sql,
    running_requests,
    started_count_sql,
)
from webapp.generations.models import ACTIVE_STATUSES, Generation, Status
from webapp.generations.selectors import generation_summary

from .models import Conversation, Message, Preset, Role

# Replies whose text goes into the next prompt: a failed or cut-off one would mislead the model.
_CONTEXT_STATUSES = (Status.DONE, Status.STOPPED)


def conversation_list(*, user: Any, limit: int = 200) -> QuerySet[Conversation]:
    """Return the user's conversations, newest activity first."""
    return Conversation.objects.filter(user=user, deleted_at__isnull=True).only(
        "id", "title", "updated_at"
    )[:limit]


def conversation_get(*, user: Any, conversation_id: Any) -> Conversation:
    """Return the user's conversation, or raise NotFound (someone else's looks the same)."""
    if not user.is_authenticated or not is_uuid(conversation_id):
        raise NotFound("There is no such conversation.")
    conversation = (
        Conversation.objects.select_related("model")
        .filter(pk=conversation_id, user=user, deleted_at__isnull=True)
        .first()
    )
    if conversation is None:
        raise NotFound("There is no such conversation.")
    return conversation


# A generation's frozen input holds the whole history before it: loaded with every
# message of a long conversation it would grow with the square of its length.
_INPUTS = ("generation__messages", "generation__rendered_prompt")
# Replies' kept HTML: read for the messages shown only (webapp/chat/rendering.py).
_HTML = ("html", "html_key")


def _messages() -> QuerySet[Message]:
    return Message.objects.select_related("generation__language_model").defer(*_INPUTS, *_HTML)


def messages_with_conversation(
    *, user: Any, conversation_id: Any = None, message_id: Any = None
) -> list[Message]:
    """Return every message of the user's conversation, named directly or by one of its
    messages, each with its conversation, model and generation: one query."""
    if not user.is_authenticated or not is_uuid(conversation_id or message_id):
        raise NotFound("There is no such conversation.")
    running = (
        Generation.objects.filter(user=user, status__in=ACTIVE_STATUSES)
        .values("user")
        .annotate(count=running_requests())
        .values("count")
    )
    messages = (
        _messages()
        .select_related("conversation__model")
        .filter(conversation__user=user, conversation__deleted_at__isnull=True)
        # The user's running generations, for their limit: computed once by PostgreSQL.
        .annotate(user_running=Coalesce(Subquery(running), 0))
    )
    if conversation_id is not None:
        messages = messages.filter(conversation_id=conversation_id)
    else:
        messages = messages.filter(conversation__messages__id=message_id)
    return list(messages)


@dataclass(frozen=True)
class SendContext:
    """What a send needs to know, read in one statement (``send_context``)."""

    conversation: Conversation  # with its model
    messages: list[Message]  # every message, each reply with its generation's status and text
    running: int  # the user's requests running now, as their limit counts them
    started: int  # the user's generations started this minute, as their limit counts them


_SEND_MESSAGE = (
    *("id", "created_at", "conversation_id", "parent_id", "role", "content", "client_id"),
    "generation_id",
)
_SEND_GENERATION = ("id", "status", "text")
_SEND_CONTEXT = """
SELECT {conversation}, {model}, {running}, {started}, {message}, {generation}
FROM "chat_conversation" c
JOIN "catalog_languagemodel" m ON m."id" = c."model_id"
LEFT JOIN "chat_message" msg ON msg."conversation_id" = c."id"
LEFT JOIN "generations_generation" g ON g."id" = msg."generation_id"
WHERE c."id" = %s AND c."user_id" = %s AND c."deleted_at" IS NULL
ORDER BY msg."created_at"
"""


def send_context(*, user: Any, conversation_id: Any) -> SendContext:
    """Return the user's conversation with its model, every message and the user's running
    requests, in one statement written as SQL (compiling it with the ORM took longer than
    running it). Raise NotFound as ``conversation_get`` does."""
    if not user.is_authenticated or not is_uuid(conversation_id):
        raise NotFound("There is no such conversation.")
    running, running_params = running_count_sql(user.pk)
    per_minute = limits_for(user).per_minute
    started, started_params = started_count_sql(user.pk, time.time(), per_minute)
    sql = _SEND_CONTEXT.format(
        conversation=rows.columns(Conversation, "c"),
        model=rows.columns(LanguageModel, "m"),
        running=running,
        started=started,
        message=rows.columns(Message, "msg", _SEND_MESSAGE),
        generation=rows.columns(Generation, "g", _SEND_GENERATION),
    )
    pk = Conversation._meta.pk
    user_pk = Conversation._meta.get_field("user").target_field
    params = [
        *running_params,
        *started_params,
        pk.get_db_prep_value(uuid.UUID(str(conversation_id)), connection),
        user_pk.get_db_prep_value(user.pk, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    if not found:
        raise NotFound("There is no such conversation.")
    return _send_context(found)


def _send_context(found: list[tuple[Any, ...]]) -> SendContext:
    first = found[0]
    at = rows.width(Conversation)
    conversation = rows.loaded(Conversation, first[:at])
    conversation.model = rows.loaded(LanguageModel, first[at : at + rows.width(LanguageModel)])
    at += rows.width(LanguageModel)
    running, started = first[at : at + 2]
    at += 2
    messages = []
    cut = at + len(_SEND_MESSAGE)
    for row in found:
        if row[at] is None:  # a conversation with no message yet
            continue
        message = rows.loaded(Message, row[at:cut], _SEND_MESSAGE)
        if message.generation_id is not None:
            message.generation = rows.loaded(Generation, row[cut:], _SEND_GENERATION)
        messages.append(message)
    return SendContext(
        conversation=conversation, messages=messages, running=int(running), started=int(started)
    )


def message_in_tree(*, user: Any, message_id: Any) -> tuple[Message, list[Message]]:
    """Return the user's message and every message of its conversation (one query)."""
    if not is_uuid(message_id):
        raise NotFound("There is no such message.")
    messages = messages_with_conversation(user=user, message_id=message_id)
    message = next((m for m in messages if str(m.pk) == str(message_id)), None)
    if message is None:
        raise NotFound("There is no such message.")
    return message, messages


def message_tree(*, conversation: Conversation) -> list[Message]:
    """Return every message of the conversation, every branch, oldest first: one query."""
    return list(_messages().filter(conversation=conversation))


# What the conversation page shows of each message (message_serialize, _message.html):
# a long conversation loads thousands of rows, each field costs.
_SHOWN = (
    *("conversation_id", "parent_id", "role", "content", "client_id", "created_at"),
    *(f"generation__{name}" for name in (*STAT_FIELDS, "status", "text", "trimmed_messages")),
    "generation__blind",
    *("generation__backend_model_id", "generation__error_code", "generation__error_detail"),
    *("generation__language_model__slug", "generation__language_model__display_name"),
)


def message_tree_shown(*, conversation: Conversation) -> list[Message]:
    """Return every message of the conversation as its page shows them: one query."""
    rows = Message.objects.select_related("generation__language_model").only(*_SHOWN)
    return list(rows.filter(conversation=conversation))


def message_path(*, conversation: Conversation, leaf_id: Any = None) -> list[Message]:
    """Return the messages from the root to ``leaf_id`` (default: the newest), in one query."""
    return branch_path(message_tree(conversation=conversation), leaf_id)


def branch_path(messages: list[Message], leaf_id: Any = None) -> list[Message]:
    """Return the branch through ``leaf_id`` (default: the newest message), root first.

    Below ``leaf_id`` the branch goes on to the newest message under it, so a
    message sent after it (from another tab) still shows.
    """
    if not messages:
        return []
    by_id = {m.pk: m for m in messages}
    start = by_id.get(leaf_id)
    if start is None:
        return _path(by_id, max(messages, key=lambda m: m.created_at))
    children: dict[Any, list[Message]] = {}
    for m in messages:
        children.setdefault(m.parent_id, []).append(m)
    newest, stack = start, [start]
    while stack:
        node = stack.pop()
        newest = max(newest, node, key=lambda m: m.created_at)
        stack.extend(children.get(node.pk, ()))
    return _path(by_id, newest)


def _path(by_id: dict[Any, Message], leaf: Message | None) -> list[Message]:
    path = []
    node = leaf
    while node is not None:
        path.append(node)
        node = by_id.get(node.parent_id) if node.parent_id else None
    return path[::-1]


def message_context(*, messages: list[Message], leaf: Message | None) -> list[ChatMessage]:
    """Return the chat history up to and including ``leaf``, as a backend receives it."""
    path = _path({m.pk: m for m in messages}, leaf)
    return [
        {"role": m.role, "content": m.text}  # type: ignore[typeddict-item]
        for m in path
        if m.text and (m.role != Role.ASSISTANT or m.status in _CONTEXT_STATUSES)
    ]


def message_serialize(message: Message) -> dict[str, Any]:
    """Return the message as the websocket protocol's ``message`` frame carries it."""
    data: dict[str, Any] = {
        "id": str(message.pk),
        "conversation": str(message.conversation_id),
        "parent": str(message.parent_id) if message.parent_id else None,
        "role": message.role,
        "content": message.text,
        "status": message.status,
        "client_id": str(message.client_id) if message.client_id else None,
        "created_at": message.created_at.isoformat(),
    }
    if message.generation is not None:
        data["generation"] = generation_summary(message.generation)
    return data


MAX_REPLAYED = 50


def conversation_replays(
    *, user: Any, conversation_id: Any, known: dict[str, int], latest: str | None
) -> tuple[Conversation, list[Message]]:
    """Return the conversation and the replies a resubscribing page needs, oldest first.

    Those are the replies it lists in ``known``, every reply still running, and
    every reply newer than ``latest`` (the newest it has); a page that has
    none of them gets the running ones and the newest.
    """
    conversation = conversation_get(user=user, conversation_id=conversation_id)
    replies = Message.objects.filter(
        conversation=conversation, role=Role.ASSISTANT, generation__isnull=False
    )
    wanted = Q(generation__status__in=ACTIVE_STATUSES) | Q(generation_id__in=list(known))
    if latest is not None:
        newer = Generation.objects.filter(pk=latest, user=user).values("created_at")[:1]
        wanted |= Q(generation__created_at__gt=Subquery(newer))
    elif not known:
        wanted |= Q(pk=Subquery(replies.order_by("-created_at").values("pk")[:1]))
    found = (
        replies.filter(wanted)
        .select_related("generation__language_model", "parent")
        .defer(*_INPUTS, *_HTML, "parent__html", "parent__html_key")
        .order_by("-created_at")[:MAX_REPLAYED]
    )
    return conversation, list(found)[::-1]


def preset_list(*, user: Any) -> QuerySet[Preset]:
    """Return the user's presets and those staff published, by name."""
    return Preset.objects.filter(Q(user=user) | Q(public=True)).order_by("name", "created_at")


def preset_get_usable(*, user: Any, preset_id: Any) -> Preset | None:
    """Return the preset if it is the user's own or public."""
    if not is_uuid(preset_id):
        return None
    return preset_list(user=user).filter(pk=preset_id).first()
