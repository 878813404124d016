"""The chat websocket: subscribe to conversations or generations, send, edit, regenerate,
stop, select a branch.

Every frame is validated; a bad one gets an ``error`` frame and changes
nothing, and the socket stays open. Chunks are forwarded in ``seq`` order per
generation: duplicates are dropped and a gap is filled from the token log.

``ChatConsumer`` (``consumer``) is made of parts, one module each:

- ``frames``: parsing and validating a frame (``FrameError``).
- ``base``: the socket's state, the groups it follows, sending, ``database_work``.
- ``access``: closing on sign-out or changed access; ``access`` frames when staff
  change who may use a watched conversation's model.
- ``subscriptions``: subscribe, replay from the token logs, forward events in order.
- ``changes``: the frames that change something (send, edit, select, regenerate, stop).
"""

from __future__ import annotations

from .access import REVOKED
from .base import database_work
from .changes import CHANGES
from .consumer import CLOSE_RESYNC, UNAVAILABLE, ChatConsumer
from .frames import MAX_FRAME_BYTES, MAX_LISTED, MAX_SEQ, FrameError
from .subscriptions import MAX_SEEN, MAX_WATCHED

__all__ = [
    "CHANGES",
    "CLOSE_RESYNC",
    "MAX_FRAME_BYTES",
    "MAX_LISTED",
    "MAX_SEEN",
    "MAX_SEQ",
    "MAX_WATCHED",
    "REVOKED",
    "UNAVAILABLE",
    "ChatConsumer",
    "FrameError",
    "database_work",
]
