"""Write access to conversations: start one, send into it, regenerate, stop."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from inference import relay
from webapp.catalog.models import LanguageModel
from webapp.catalog.policy import model_can_use
from webapp.core.errors import Conflict, PermissionDenied, ValidationFailed

from .models import ACTIVE_STATUSES, Conversation, Message, Role, Status
from .selectors import conversation_get, message_get

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
    _check_access(user=user, model=model)
    with transaction.atomic():
        conversation = Conversation.objects.create(user=user, model=model, title=_title(text))
        return _send(conversation=conversation, content=text, client_id=client_id, parent=None)


def message_send(
    *, user: Any, conversation_id: Any, content: Any, client_id: uuid.UUID | None = None
) -> Sent:
    """Append the user's message to the conversation and queue the reply.

    A resend with a ``client_id`` already used in the conversation returns the
    first send's messages and queues nothing.
    """
    text = content_clean(content)
    conversation = conversation_get(user=user, conversation_id=conversation_id)
    _check_access(user=user, model=conversation.model)
    if client_id is not None:
        existing = _sent_with(conversation=conversation, client_id=client_id)
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
            _check_idle(conversation=locked)
            parent = locked.messages.order_by("-created_at").first()
            return _send(conversation=locked, content=text, client_id=client_id, parent=parent)
    except IntegrityError:  # two resends raced on the same client_id
        existing = _sent_with(conversation=conversation, client_id=client_id)
        if existing is None:
            raise
        return existing


def message_regenerate(*, user: Any, message_id: Any) -> Message:
    """Queue a new reply beside an assistant message (a sibling branch)."""
    message = message_get(user=user, message_id=message_id)
    if message.role != Role.ASSISTANT:
        raise ValidationFailed("Only a reply can be regenerated.")
    conversation = message.conversation
    _check_access(user=user, model=conversation.model)
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        _check_idle(conversation=locked)
        reply = _queue_reply(conversation=locked, parent_id=message.parent_id)
    return reply


@dataclass(frozen=True)
class Stopped:
    message: Message
    before_start: bool  # True: no worker had started it, so nobody else announces the end


def message_stop(*, user: Any, message_id: Any) -> Stopped:
    """Stop a reply: a queued one ends here, a streaming one is cancelled in its worker."""
    message = message_get(user=user, message_id=message_id)
    if message.role != Role.ASSISTANT:
        raise ValidationFailed("Only a reply can be stopped.")
    now = timezone.now()
    if Message.objects.filter(pk=message.pk, status=Status.QUEUED).update(
        status=Status.STOPPED, finish_reason="stopped", finished_at=now
    ):
        message.refresh_from_db()
        return Stopped(message=message, before_start=True)
    if message.status == Status.STREAMING:
        relay.cancel_request(str(message.pk))
    return Stopped(message=message, before_start=False)


def _send(
    *, conversation: Conversation, content: str, client_id: uuid.UUID | None, parent: Message | None
) -> Sent:
    user_message = Message.objects.create(
        conversation=conversation,
        parent=parent,
        role=Role.USER,
        content=content,
        status=Status.DONE,
        client_id=client_id,
    )
    reply = _queue_reply(conversation=conversation, parent_id=user_message.pk)
    return Sent(user_message=user_message, assistant_message=reply, created=True)


def _queue_reply(*, conversation: Conversation, parent_id: Any) -> Message:
    from inference.tasks import generate

    reply = Message.objects.create(
        conversation=conversation,
        parent_id=parent_id,
        role=Role.ASSISTANT,
        status=Status.QUEUED,
        language_model=conversation.model,
    )
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
    generate.delay_on_commit(str(reply.pk))
    return reply


def _sent_with(*, conversation: Conversation, client_id: uuid.UUID) -> Sent | None:
    user_message = Message.objects.filter(conversation=conversation, client_id=client_id).first()
    if user_message is None:
        return None
    reply = user_message.children.order_by("created_at").first()
    return Sent(user_message=user_message, assistant_message=reply, created=False)  # type: ignore[arg-type]


def _check_access(*, user: Any, model: LanguageModel) -> None:
    if not model_can_use(user=user, model=model, action="chat"):
        raise PermissionDenied("You do not have access to this model.")


def _check_idle(*, conversation: Conversation) -> None:
    if conversation.messages.filter(status__in=ACTIVE_STATUSES).exists():
        raise Conflict("Wait for the current reply to finish, or stop it.", code="busy")


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"
