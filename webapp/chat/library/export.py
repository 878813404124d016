"""Export: the user's conversations as JSON (every branch, parameters, stats) or Markdown."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from webapp.chat.models import Conversation, Message
from webapp.chat.selectors import _HTML, _INPUTS, branch_path
from webapp.core.errors import NotFound
from webapp.core.ids import is_uuid

from .selectors import kept

FORMAT = "gatehouse-export"
VERSION = 1
_STATS = (
    "status",
    "finish_reason",
    "prompt_tokens",
    "generated_tokens",
    "time_to_first_token_ms",
    "tokens_per_second",
    "backend_model_id",
    "backend_revision",
)


def _load(user: Any, conversation_id: Any) -> tuple[list[Conversation], dict[Any, list[Message]]]:
    conversations = kept(user).select_related("model").order_by("-updated_at")
    if conversation_id is not None:
        if not is_uuid(conversation_id):
            raise NotFound("There is no such conversation.")
        conversations = conversations.filter(pk=conversation_id)
    found = list(conversations)
    if conversation_id is not None and not found:
        raise NotFound("There is no such conversation.")
    messages: dict[Any, list[Message]] = {c.pk: [] for c in found}
    rows = (
        Message.objects.filter(conversation__in=[c.pk for c in found])
        .select_related("generation__language_model")
        .defer(*_INPUTS, *_HTML)
        .order_by("created_at")
    )
    for message in rows.iterator(chunk_size=2000):
        messages[message.conversation_id].append(message)
    return found, messages


def conversations_export_json(*, user: Any, conversation_id: Any = None) -> dict[str, Any]:
    """Return one conversation of the user (or all of them) as a Gatehouse export."""
    found, messages = _load(user, conversation_id)
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": timezone.now().isoformat(),
        "conversations": [_conversation(c, messages[c.pk]) for c in found],
    }


def _conversation(conversation: Conversation, messages: list[Message]) -> dict[str, Any]:
    return {
        "id": str(conversation.pk),
        "title": conversation.title,
        "model": conversation.model.slug,
        "system_prompt": conversation.system_prompt,
        "params": conversation.params,
        # The last message of the branch last viewed; the conversation reopens on it.
        "current_leaf": str(conversation.current_leaf_id) if conversation.current_leaf_id else None,
        "pinned": conversation.pinned,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "messages": [_message(m) for m in messages],
    }


def _message(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(message.pk),
        "parent": str(message.parent_id) if message.parent_id else None,
        "role": message.role,
        "content": message.text,
        "created_at": message.created_at.isoformat(),
    }
    generation = message.generation
    if generation is not None:
        data["generation"] = {
            "model": generation.language_model.slug,
            "params": generation.params,
            **{name: getattr(generation, name) for name in _STATS},
        }
    return data


def conversations_export_markdown(*, user: Any, conversation_id: Any = None) -> str:
    """Return each conversation's branch last viewed (else the one to its newest message)
    as Markdown."""
    found, messages = _load(user, conversation_id)
    return "\n\n---\n\n".join(_markdown(c, messages[c.pk]) for c in found) + "\n"


def _markdown(conversation: Conversation, messages: list[Message]) -> str:
    lines = [f"# {conversation.title}", "", f"Model: {conversation.model.display_name}"]
    for message in branch_path(messages, conversation.current_leaf_id):
        who = "You" if message.role == "user" else message.role.title()
        if message.generation is not None:
            who += f" ({message.generation.language_model.display_name})"
        lines += ["", f"## {who}", "", message.text]
    return "\n".join(lines)
