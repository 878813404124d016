"""Message trees from outside: checked and ordered without recursion, written in bulk."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.chat.models import Conversation, Message
from webapp.core.errors import ValidationFailed

BATCH = 1000


@dataclass
class Node:
    key: str
    parent: str | None
    role: str
    content: str
    created_at: dt.datetime | None = None
    reply: dict[str, Any] | None = None  # a reply's stats (Generation fields), if exported
    reply_model: str | None = None  # the slug of the model that wrote it


@dataclass
class Tree:
    title: str
    model_slug: str | None
    created_at: dt.datetime | None
    nodes: list[Node] = field(default_factory=list)  # parents before children
    system_prompt: str = ""
    params: dict[str, Any] = field(default_factory=dict)  # checked against the model on import
    current_leaf: str | None = None  # the key of the node the conversation reopens on
    pinned: bool = False


def tree_order(nodes: Iterable[Node], *, where: str) -> list[Node]:
    """Return ``nodes`` parents first, or raise ValidationFailed on a duplicate id, a parent
    that is not there, or a cycle (a node that no walk from a root reaches)."""
    by_key: dict[str, Node] = {}
    for node in nodes:
        if node.key in by_key:
            raise ValidationFailed(f"{where}: the message id {node.key!r} appears twice.")
        by_key[node.key] = node
    children: dict[str | None, list[Node]] = {}
    for node in by_key.values():
        if node.parent is not None and node.parent not in by_key:
            raise ValidationFailed(f"{where}: a message's parent {node.parent!r} is missing.")
        children.setdefault(node.parent, []).append(node)
    ordered: list[Node] = []
    queue = deque(children.get(None, []))
    while queue:
        node = queue.popleft()
        ordered.append(node)
        queue.extend(children.get(node.key, []))
    if len(ordered) != len(by_key):
        raise ValidationFailed(f"{where}: the messages form a cycle.")
    return ordered


def messages_insert(messages: list[Message], times: list[dt.datetime]) -> None:
    """Insert ``messages`` (parents first) and give them ``times`` as their creation times
    (``auto_now_add`` would stamp them all with now)."""
    Message.objects.bulk_create(messages, batch_size=BATCH)
    for message, when in zip(messages, times, strict=True):
        message.created_at = when
    Message.objects.bulk_update(messages, ["created_at"], batch_size=BATCH)


def content_check(text: str, *, where: str) -> str:
    """Return a message's text from outside, or refuse it: too long, or holding a NUL."""
    # Ten times what a person may type: a reply may run long.
    if len(text) > settings.CHAT_MAX_MESSAGE_CHARS * 10 or "\x00" in text:
        raise ValidationFailed(f"{where}: a message is too long or holds a NUL character.")
    return text


def title_read(value: Any) -> str:
    """Return a title from outside as one line of at most 200 characters."""
    title = " ".join(value.split()) if isinstance(value, str) else ""
    return title[:200] or "Imported conversation"


def time_read(value: Any) -> dt.datetime | None:
    """Return an epoch number or an ISO string as an aware datetime, or None."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value, tz=dt.UTC)
        if isinstance(value, str):
            when = dt.datetime.fromisoformat(value)
            return when if timezone.is_aware(when) else when.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def conversation_from_history(
    *,
    user: Any,
    model: Any,
    title: str,
    messages: Sequence[Mapping[str, Any]],
    params: dict[str, Any] | None = None,
) -> Conversation:
    """Create a conversation of ``user`` holding ``messages`` (one branch, oldest first),
    opened on its last message; ``params`` are its settings (already checked)."""
    with transaction.atomic():
        conversation = Conversation.objects.create(
            user=user, model=model, title=title_read(title), params=params or {}
        )
        rows, parent = [], None
        for item in messages:
            parent = Message(
                id=uuid.uuid4(),
                conversation=conversation,
                parent=parent,
                role=item["role"],
                content=item["content"],
            )
            rows.append(parent)
        now = timezone.now()
        messages_insert(rows, [now + dt.timedelta(microseconds=i) for i in range(len(rows))])
        if parent is not None:
            conversation.current_leaf = parent
            conversation.save(update_fields=["current_leaf"])
    return conversation
