"""What the conversation page shows: the branch last viewed, every message for the
branch switcher, and the settings panel."""

from __future__ import annotations

from typing import Any

from webapp.catalog.selectors import model_list_usable

from . import selectors
from .forms import PresetForm, SettingsForm
from .models import Conversation


def conversation_context(
    *,
    user: Any,
    conversation: Conversation,
    settings_form: SettingsForm | None = None,
    preset_form: PresetForm | None = None,
) -> dict[str, Any]:
    """Return the page's context: a fixed number of queries, however long the conversation."""
    messages = selectors.message_tree(conversation=conversation)
    path = selectors.branch_path(messages, conversation.current_leaf_id)
    models = model_list_usable(user=user, action="chat")
    return {
        "conversation": conversation,
        "chat_messages": path,
        # Every branch: the page switches between them without asking the server.
        "messages_data": [selectors.message_serialize(m) for m in messages],
        "settings_form": settings_form or SettingsForm(conversation=conversation, models=models),
        "preset_form": preset_form or PresetForm(),
    }
