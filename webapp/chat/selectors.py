"""Read access to conversations and messages."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from inference.backends import ChatMessage
from webapp.core.errors import NotFound

from .models import Conversation, Message, Role, Status


def conversation_list(*, user: Any, limit: int = 200) -> QuerySet[Conversation]:
    """Return the user's conversations, newest activity first."""
    return Conversation.objects.filter(user=user).only("id", "title", "updated_at")[:limit]


def conversation_get(*, user: Any, conversation_id: Any) -> Conversation:
    """Return the user's conversation, or raise NotFound (someone else's looks the same)."""
    if not user.is_authenticated or not _is_uuid(conversation_id):
        raise NotFound("There is no such conversation.")
    conversation = (
        Conversation.objects.select_related("model").filter(pk=conversation_id, user=user).first()
    )
    if conversation is None:
        raise NotFound("There is no such conversation.")
    return conversation


def message_get(*, user: Any, message_id: Any) -> Message:
    if not user.is_authenticated or not _is_uuid(message_id):
        raise NotFound("There is no such message.")
    message = (
        Message.objects.select_related("conversation")
        .filter(pk=message_id, conversation__user=user)
        .first()
    )
    if message is None:
        raise NotFound("There is no such message.")
    return message


def message_path(*, conversation: Conversation, leaf_id: Any = None) -> list[Message]:
    """Return the messages from the root to ``leaf_id`` (default: the newest), in one query."""
    messages = {m.pk: m for m in Message.objects.filter(conversation=conversation)}
    if not messages:
        return []
    node = messages.get(leaf_id) or max(messages.values(), key=lambda m: m.created_at)
    path = []
    while node is not None:
        path.append(node)
        node = messages.get(node.parent_id) if node.parent_id else None
    return path[::-1]


def message_latest_assistant(*, conversation: Conversation) -> Message | None:
    return (
        Message.objects.filter(conversation=conversation, role=Role.ASSISTANT)
        .select_related("parent")
        .order_by("-created_at")
        .first()
    )


def message_context(*, message: Message) -> list[ChatMessage]:
    """Return the chat history a reply to ``message``'s parent is generated from."""
    if message.parent_id is None:
        return []
    path = message_path(conversation=message.conversation, leaf_id=message.parent_id)
    return [
        {"role": m.role, "content": m.content}  # type: ignore[typeddict-item]
        for m in path
        if m.content and m.status in (Status.DONE, Status.STOPPED)
    ]


def message_serialize(message: Message) -> dict[str, Any]:
    """Return the message as the websocket protocol's ``message`` frame carries it."""
    data: dict[str, Any] = {
        "id": str(message.pk),
        "conversation": str(message.conversation_id),
        "parent": str(message.parent_id) if message.parent_id else None,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "client_id": str(message.client_id) if message.client_id else None,
        "created_at": message.created_at.isoformat(),
    }
    if message.role == Role.ASSISTANT:
        data["stats"] = message.stats()
        if message.error_code:
            data["error"] = {"code": message.error_code, "detail": message.error_detail}
    return data


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except (TypeError, ValueError):
        return False
    return True
