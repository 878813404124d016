"""Write access to conversations: start one, send into it, regenerate a reply.

A reply is a generation (``webapp.generations``) that an assistant message
points at; creating it is where access is checked. A send runs four queries:
the conversation's messages, the generation, both messages, the timestamp.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from webapp.catalog.models import LanguageModel
from webapp.core.errors import Conflict, NotFound, ValidationFailed
from webapp.core.ids import is_uuid
from webapp.generations.models import Generation, Origin
from webapp.generations.services import generation_create

from .models import Conversation, Message, Role
from .selectors import conversation_get, message_context, messages_with_conversation

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
    *, user: Any, model: LanguageModel, content: Any, client_id: uuid.UUID | None = None
) -> Sent:
    """Create a conversation titled from its first message, and send that message."""
    text = content_clean(content)
    with transaction.atomic():
        conversation = Conversation.objects.create(user=user, model=model, title=_title(text))
        return _send(
            user=user,
            conversation=conversation,
            history=[],
            content=text,
            client_id=client_id,
            touch=False,
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
    messages = messages_with_conversation(user=user, conversation_id=conversation_id)
    conversation = (
        messages[0].conversation
        if messages
        else conversation_get(user=user, conversation_id=conversation_id)
    )
    if client_id is not None and (first := _sent_with(messages, client_id)) is not None:
        return first
    parent = _parent(messages, parent_id)
    if parent is not None and parent.is_active:
        raise Conflict("Wait for the current reply to finish, or stop it.", code="busy")
    history = message_context(messages=messages, leaf=parent)
    try:
        with transaction.atomic():
            return _send(
                user=user,
                conversation=conversation,
                history=history,
                content=text,
                client_id=client_id,
                parent=parent,
                running=messages[0].user_running if messages else None,
            )
    except IntegrityError:  # two resends raced on the same client_id
        again = messages_with_conversation(user=user, conversation_id=conversation_id)
        if client_id is None or (first := _sent_with(again, client_id)) is None:
            raise
        return first


def message_regenerate(*, user: Any, message_id: Any, same_settings: bool = False) -> Message:
    """Queue a new reply beside an assistant message (a sibling branch).

    With ``same_settings`` the new reply reuses the old one's model, exact
    parameters (seed included) and input; otherwise it takes the conversation's
    model and its defaults, with the history as it stands.
    """
    if not is_uuid(message_id):
        raise NotFound("There is no such message.")
    messages = messages_with_conversation(user=user, message_id=message_id)
    message = next((m for m in messages if str(m.pk) == str(message_id)), None)
    if message is None:
        raise NotFound("There is no such message.")
    if message.role != Role.ASSISTANT:
        raise ValidationFailed("Only a reply can be regenerated.")
    conversation = message.conversation
    old = message.generation
    running = messages[0].user_running
    with transaction.atomic():
        if same_settings and old is not None:
            generation = _generation(
                user=user,
                conversation=conversation,
                model=old.language_model,
                history=old.messages,
                params=old.params,
                with_defaults=False,
                running=running,
            )
        else:
            parent = next((m for m in messages if m.pk == message.parent_id), None)
            history = message_context(messages=messages, leaf=parent)
            generation = _generation(
                user=user, conversation=conversation, history=history, running=running
            )
        reply = Message.objects.create(
            conversation=conversation,
            parent_id=message.parent_id,
            role=Role.ASSISTANT,
            generation=generation,
        )
        _touch(conversation)
    return reply


def _send(
    *,
    user: Any,
    conversation: Conversation,
    history: list[Any],
    content: str,
    client_id: uuid.UUID | None,
    parent: Message | None = None,
    touch: bool = True,
    running: int | None = None,
) -> Sent:
    user_message = Message(
        id=uuid.uuid4(),
        conversation=conversation,
        parent=parent,
        role=Role.USER,
        content=content,
        client_id=client_id,
    )
    history = [*history, {"role": "user", "content": content}]
    generation = _generation(user=user, conversation=conversation, history=history, running=running)
    reply = Message(
        id=uuid.uuid4(),
        conversation=conversation,
        parent=user_message,
        role=Role.ASSISTANT,
        generation=generation,
    )
    Message.objects.bulk_create([user_message, reply])
    if touch:  # a conversation created in this transaction is already the newest
        _touch(conversation)
    return Sent(user_message=user_message, assistant_message=reply, created=True)


def _generation(
    *,
    user: Any,
    conversation: Conversation,
    history: list[Any],
    model: LanguageModel | None = None,
    params: dict[str, Any] | None = None,
    with_defaults: bool = True,
    running: int | None = None,
) -> Generation:
    return generation_create(
        user=user,
        model=model or conversation.model,
        origin=Origin.CHAT,
        messages=history,
        params=params,
        with_defaults=with_defaults,
        group=conversation.group,
        running=running,
    )


def _touch(conversation: Conversation) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())


def _parent(messages: list[Message], parent_id: Any) -> Message | None:
    if parent_id is None:
        return max(messages, key=lambda m: m.created_at) if messages else None
    parent = next((m for m in messages if str(m.pk) == str(parent_id)), None)
    if parent is None:
        raise NotFound("There is no such message in this conversation.")
    return parent


def _sent_with(messages: list[Message], client_id: uuid.UUID) -> Sent | None:
    user_message = next((m for m in messages if m.client_id == client_id), None)
    if user_message is None:
        return None
    replies = [m for m in messages if m.parent_id == user_message.pk]
    reply = min(replies, key=lambda m: m.created_at) if replies else None
    return Sent(user_message=user_message, assistant_message=reply, created=False)  # type: ignore[arg-type]


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"
