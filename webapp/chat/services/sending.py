"""Start a conversation, send into it, edit an earlier message: each saves the user's
message and queues its reply (``replies``).

On PostgreSQL a send runs two statements, written as SQL: the conversation with
its messages, then one that places the reply in its model's fair queue and
saves the generation, both messages and the timestamp.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from webapp.catalog.models import LanguageModel
from webapp.core.errors import Conflict, NotFound, ValidationFailed

from ..configure import params_clean
from ..models import Conversation, Message, Preset, Role
from ..selectors import (
    branch_path,
    message_context,
    message_in_tree,
    messages_with_conversation,
    send_context,
)
from .replies import replies_save, reply_generation

TITLE_LENGTH = 60


@dataclass(frozen=True)
class Sent:
    user_message: Message
    assistant_message: Message
    created: bool  # False when a resend with the same client_id found the first send


def content_clean(content: Any) -> str:
    """Return the message text, or raise ValidationFailed with the reason."""
    if not isinstance(content, str) or not content.strip():
        raise ValidationFailed("Type a message first.")
    if "\x00" in content:
        raise ValidationFailed("The message contains a NUL character.")
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len(content) > limit:
        raise ValidationFailed(
            f"The message is too long ({len(content)} characters, at most {limit})."
        )
    return content.strip()


def conversation_start(
    *,
    user: Any,
    model: LanguageModel,
    content: Any,
    client_id: uuid.UUID | None = None,
    preset: Preset | None = None,
) -> Sent:
    """Create a conversation titled from its first message, and send that message.

    With a ``preset`` the conversation takes its system prompt and parameters
    (checked against ``model`` first).
    """
    text = content_clean(content)
    params = params_clean(model=model, params=preset.params) if preset is not None else {}
    with transaction.atomic():
        conversation = Conversation.objects.create(
            user=user,
            model=model,
            title=_title(text),
            system_prompt=preset.system_prompt if preset is not None else "",
            params=params,
        )
        return _send(
            user=user,
            conversation=conversation,
            history=[],
            content=text,
            client_id=client_id,
        )


def message_send(
    *,
    user: Any,
    conversation_id: Any,
    content: Any,
    client_id: uuid.UUID | None = None,
    parent_id: Any = None,
) -> Sent:
    """Append the user's message after ``parent_id`` (default: the newest) and queue a reply.

    Refused as ``busy`` only when the message it follows is a reply still
    running; other generations of the conversation may stream meanwhile. A
    resend with a ``client_id`` already used in the conversation returns the
    first send's messages and queues nothing.
    """
    text = content_clean(content)
    found = send_context(user=user, conversation_id=conversation_id)
    if client_id is not None and (first := _sent_with(found.messages, client_id)) is not None:
        return first
    conversation = found.conversation
    parent = _parent(found.messages, parent_id, default=conversation.current_leaf_id)
    try:
        return _send_after(
            user=user,
            conversation=conversation,
            messages=found.messages,
            parent=parent,
            text=text,
            client_id=client_id,
            running=found.running,
            started=found.started,
        )
    except IntegrityError as exc:  # two resends raced on the same client_id
        return _resent(exc, user=user, conversation_id=conversation_id, client_id=client_id)


def message_edit(
    *, user: Any, message_id: Any, content: Any, client_id: uuid.UUID | None = None
) -> Sent:
    """Send ``content`` in place of the user's earlier message: a new branch beside it.

    The new message has the same parent as the old one, and its reply sees the
    history up to that parent; the old branch stays as it was.
    """
    text = content_clean(content)
    original, messages = message_in_tree(user=user, message_id=message_id)
    if original.role != Role.USER:
        raise ValidationFailed("Only your own messages can be edited; regenerate a reply.")
    if client_id is not None and (first := _sent_with(messages, client_id)) is not None:
        return first
    parent = next((m for m in messages if m.pk == original.parent_id), None)
    try:
        return _send_after(
            user=user,
            conversation=original.conversation,
            messages=messages,
            parent=parent,
            text=text,
            client_id=client_id,
            running=messages[0].user_running,
        )
    except IntegrityError as exc:  # two resends raced on the same client_id
        conversation_id = original.conversation_id
        return _resent(exc, user=user, conversation_id=conversation_id, client_id=client_id)


def _send_after(
    *,
    user: Any,
    conversation: Conversation,
    messages: list[Message],
    parent: Message | None,
    text: str,
    client_id: uuid.UUID | None,
    running: int | None = None,
    started: int | None = None,
) -> Sent:
    if parent is not None and parent.is_active:
        raise Conflict("Wait for the current reply to finish, or stop it.", code="busy")
    return _send(
        user=user,
        conversation=conversation,
        history=message_context(messages=messages, leaf=parent),
        content=text,
        client_id=client_id,
        parent_id=parent.pk if parent is not None else None,
        running=running,
        started=started,
    )


def _resent(
    error: IntegrityError, *, user: Any, conversation_id: Any, client_id: uuid.UUID | None
) -> Sent:
    """Return the first send when a resend lost the race to save the same ``client_id``."""
    again = messages_with_conversation(user=user, conversation_id=conversation_id)
    if client_id is None or (first := _sent_with(again, client_id)) is None:
        raise error
    return first


def _send(
    *,
    user: Any,
    conversation: Conversation,
    history: list[Any],
    content: str,
    client_id: uuid.UUID | None,
    parent_id: Any = None,
    running: int | None = None,
    started: int | None = None,
) -> Sent:
    """Save the user's message and its reply, queued."""
    user_message = Message(
        id=uuid.uuid4(),
        conversation=conversation,
        parent_id=parent_id,
        role=Role.USER,
        content=content,
        client_id=client_id,
    )
    history = [*history, {"role": "user", "content": content}]
    generation = reply_generation(
        user=user, conversation=conversation, history=history, running=running, started=started
    )
    reply = Message(
        id=uuid.uuid4(),
        conversation=conversation,
        parent=user_message,
        role=Role.ASSISTANT,
        generation=generation,
    )
    replies_save(conversation, generation, [user_message, reply])
    return Sent(user_message=user_message, assistant_message=reply, created=True)


def _parent(messages: list[Message], parent_id: Any, *, default: Any = None) -> Message | None:
    if parent_id is None:  # the end of the branch the user last viewed
        path = branch_path(messages, default)
        return path[-1] if path else None
    parent = next((m for m in messages if str(m.pk) == str(parent_id)), None)
    if parent is None:
        raise NotFound("There is no such message in this conversation.")
    return parent


def _sent_with(messages: list[Message], client_id: uuid.UUID) -> Sent | None:
    """Return the first send's messages if ``client_id`` was sent before: read again in
    full (one query), as ``messages`` may hold only what a send needs."""
    user_message = next((m for m in messages if m.client_id == client_id), None)
    if user_message is None:
        return None
    replies = [m for m in messages if m.parent_id == user_message.pk]
    reply = min(replies, key=lambda m: m.created_at) if replies else None
    wanted = [user_message.pk] + ([reply.pk] if reply is not None else [])
    full = Message.objects.select_related("generation__language_model").in_bulk(wanted)
    return Sent(
        user_message=full[user_message.pk],
        assistant_message=full.get(reply.pk) if reply is not None else None,  # type: ignore[arg-type]
        created=False,
    )


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"
