"""Queue a reply: prepare its generation, save it with its messages in its model's fair
queue, and regenerate a reply beside an earlier one.

On PostgreSQL the save is one statement written as SQL (``replies_save``).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from webapp.catalog.models import LanguageModel
from webapp.core import rows
from webapp.core.errors import ValidationFailed
from webapp.generations.models import Generation, Origin
from webapp.generations.services import (
    generation_enqueue,
    generation_place,
    generation_place_sql,
    generation_placed,
    generation_prepare,
)

from ..models import Conversation, Message, Role
from ..selectors import message_context, message_in_tree


def message_regenerate(*, user: Any, message_id: Any, same_settings: bool = False) -> Message:
    """Queue a new reply beside an assistant message (a sibling branch).

    With ``same_settings`` the new reply reuses the old one's model, exact
    parameters (seed included) and input; otherwise it takes the conversation's
    model and its defaults, with the history as it stands.
    """
    message, messages = message_in_tree(user=user, message_id=message_id)
    if message.role != Role.ASSISTANT:
        raise ValidationFailed("Only a reply can be regenerated.")
    conversation = message.conversation
    old = message.generation
    running = messages[0].user_running
    if same_settings and old is not None:
        generation = reply_generation(
            user=user,
            conversation=conversation,
            model=old.language_model,
            history=old.messages,
            repeat=old.params,
            running=running,
        )
    else:
        parent = next((m for m in messages if m.pk == message.parent_id), None)
        history = message_context(messages=messages, leaf=parent)
        generation = reply_generation(
            user=user, conversation=conversation, history=history, running=running
        )
    reply = Message(
        id=uuid.uuid4(),
        conversation=conversation,
        parent_id=message.parent_id,
        role=Role.ASSISTANT,
        generation=generation,
    )
    replies_save(conversation, generation, [reply])
    return reply


def reply_generation(
    *,
    user: Any,
    conversation: Conversation,
    history: list[Any],
    model: LanguageModel | None = None,
    repeat: dict[str, Any] | None = None,
    running: int | None = None,
    started: int | None = None,
) -> Generation:
    """Prepare a reply to ``history``: with the conversation's system prompt first and its
    parameters over the model's defaults, or, to ``repeat`` a reply, its exact input and
    parameters (``repeat``: the parameters it was sent with). ``replies_save`` queues it."""
    if repeat is None and conversation.system_prompt:
        history = [{"role": "system", "content": conversation.system_prompt}, *history]
    return generation_prepare(
        user=user,
        model=model or conversation.model,
        origin=Origin.CHAT,
        messages=history,
        params=conversation.params if repeat is None else repeat,
        with_defaults=repeat is None,
        group=conversation.group,
        running=running,
        started=started,
    )


_TOUCH = 'UPDATE "chat_conversation" SET "updated_at" = %s, "current_leaf_id" = %s WHERE "id" = %s'


# Where the fair queue placed the generation (``p``, see ``replies_save``), saved with it.
_PLACED = (
    ("endpoint_id", '(SELECT "endpoint" FROM p)'),
    ("admitted_at", 'CASE WHEN (SELECT "endpoint" FROM p) IS NULL THEN NULL ELSE now() END'),
)


def replies_save(
    conversation: Conversation, generation: Generation, messages: list[Message]
) -> None:
    """Place the reply's generation in its model's queue, save it with ``messages`` (the
    reply last), and mark the conversation as the newest, opening on that reply; the
    generation is enqueued once the transaction commits.

    On PostgreSQL that is one statement, written as SQL: it takes the model's row lock
    (``generation_place_sql``), so the lock is held only while PostgreSQL runs it. A lock held
    across round trips made a burst of sends wait in line for it, and the ORM took longer
    to compile these writes than PostgreSQL to run them (docs/performance.md).
    """
    field = Conversation._meta.get_field
    touch = [
        field("updated_at").get_db_prep_save(timezone.now(), connection),
        field("current_leaf").target_field.get_db_prep_value(messages[-1].pk, connection),
        field("id").get_db_prep_value(conversation.pk, connection),
    ]
    if connection.vendor != "postgresql":
        # No savepoint inside a caller's transaction (a conversation's start): only a
        # database error can fail here, which ends that transaction anyway.
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            generation_place(generation)
            for sql, params in (rows.insert([generation]), rows.insert(messages), (_TOUCH, touch)):
                cursor.execute(sql, params)
            generation_enqueue(generation)
        return
    place, place_params = generation_place_sql(generation)
    gen_sql, gen_params = rows.insert([generation], _PLACED)
    msg_sql, msg_params = rows.insert(messages)
    # Every piece is SQL written here or from the models' definitions; values are parameters.
    sql = (
        f'WITH p AS (SELECT {place} AS "endpoint"), g AS ({gen_sql}), m AS ({msg_sql}) '  # noqa: S608
        f'{_TOUCH} RETURNING (SELECT "endpoint" FROM p)'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*place_params, *gen_params, *msg_params, *touch])
        (endpoint,) = cursor.fetchone()
    generation_placed(generation, endpoint)
    generation_enqueue(generation)
