"""Write access to conversations: start one, send into it, edit a message, regenerate a
reply.

A reply is a generation (``webapp.generations``) that an assistant message
points at; preparing it is where access is checked.
"""

from __future__ import annotations

from .replies import message_regenerate
from .sending import Sent, content_clean, conversation_start, message_edit, message_send

__all__ = [
    "Sent",
    "content_clean",
    "conversation_start",
    "message_edit",
    "message_regenerate",
    "message_send",
]
