"""What the conversation page shows: the branch last viewed, every message for the
branch switcher, and the settings panel."""

from __future__ import annotations

from typing import Any

from webapp.catalog.selectors import model_list_usable

from . import selectors
from .configure import conversation_select
from .forms import PresetForm, SettingsForm
from .models import Conversation, Message
from .rendering import replies_render

# The newest messages of the branch rendered on the server; the page builds the older
# ones from its JSON as the reader scrolls up (a 2,000-message page would be megabytes).
SHOWN_MESSAGES = 60


def conversation_context(
    *,
    user: Any,
    conversation: Conversation,
    settings_form: SettingsForm | None = None,
    preset_form: PresetForm | None = None,
    anchor_id: Any = None,
) -> dict[str, Any]:
    """Return the page's context: a fixed number of queries, however long the conversation.

    The newest messages of the branch are rendered, from ``anchor_id`` on if it is
    older (the message a search hit opens the conversation at). An anchor on another
    branch switches to the branch holding it, and that branch is remembered.
    """
    messages = selectors.message_tree_shown(conversation=conversation)
    path = selectors.branch_path(messages, conversation.current_leaf_id)
    if anchor_id and not any(str(m.pk) == str(anchor_id) for m in path):
        path = _switch_to(user, conversation, messages, anchor_id) or path
    start = max(0, len(path) - SHOWN_MESSAGES)
    start = min([start] + [i for i, m in enumerate(path) if str(m.pk) == str(anchor_id)])
    shown = path[start:]
    replies_render(messages=shown)
    models = model_list_usable(user=user, action="chat")
    return {
        "conversation": conversation,
        "chat_messages": shown,
        "earlier": sum(1 for m in path[:start] if m.role != "system"),
        # Every branch: the page switches between them without asking the server.
        "messages_data": [selectors.message_serialize(m) for m in messages],
        "settings_form": settings_form or SettingsForm(conversation=conversation, models=models),
        "preset_form": preset_form or PresetForm(),
    }


def _switch_to(
    user: Any, conversation: Conversation, messages: list[Message], anchor_id: Any
) -> list[Message] | None:
    anchor = next((m for m in messages if str(m.pk) == str(anchor_id)), None)
    if anchor is None:  # not a message of this conversation: nothing changes
        return None
    conversation_select(user=user, conversation_id=conversation.pk, leaf_id=anchor.pk)
    conversation.current_leaf_id = anchor.pk
    return selectors.branch_path(messages, anchor.pk)
