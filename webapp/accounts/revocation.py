"""Open sockets end with the session, and with the access, they were opened with.

A chat socket joins its user's group and remembers, at connect, its user's
access epoch (a counter in Redis). Logging out ends that session's sockets;
deactivation, a password change, and any change of staff rights or groups
bump the epoch and end every socket of the user. The close arrives through the
channel layer within milliseconds; and every state-changing frame compares
the epoch again, so a frame is refused even if that message was lost.

Closed with ``CLOSE_SIGNED_OUT`` (4401) the page says so and stays closed;
with ``CLOSE_ACCESS_CHANGED`` (4403) it reconnects, and the handshake decides
again who the user is (a session of a deactivated user, or one from before a
password change, is then refused with 4401).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from inference import relay

CLOSE_SIGNED_OUT = 4401
CLOSE_ACCESS_CHANGED = 4403


def user_group(user_id: Any) -> str:
    return f"user.{user_id}"


def model_group(model_id: Any) -> str:
    """The sockets watching a conversation with this model."""
    return f"model.{model_id}"


def model_changed(model_id: Any) -> None:
    """Who may use the model changed: its sockets re-check and say what that means there."""

    def send() -> None:
        async_to_sync(get_channel_layer().group_send)(
            model_group(model_id), {"type": "access.model_changed", "model": str(model_id)}
        )

    transaction.on_commit(send)


def _epoch_key(user_id: Any) -> str:
    return f"gatehouse:user:{user_id}:epoch"


def _session_key(session_key: str) -> str:
    return f"gatehouse:session:{session_key}:ended"


async def access_state(user_id: Any, session_key: str | None) -> tuple[str, bool]:
    """Return the user's access epoch and whether ``session_key`` was signed out."""
    keys = [_epoch_key(user_id)] + ([_session_key(session_key)] if session_key else [])
    values = await relay.async_client().mget(keys)
    return str(values[0] or "0"), bool(session_key and values[1])


def session_ended(user_id: Any, session_key: str) -> None:
    """One session signed out: its sockets close with 4401."""
    from django.conf import settings

    relay.sync_client().set(_session_key(session_key), "1", ex=settings.SESSION_COOKIE_AGE)
    _announce(user_id, {"session": session_key, "code": CLOSE_SIGNED_OUT})


def access_changed(user_id: Any) -> None:
    """Whatever the user may do changed (or they may do nothing): every socket closes."""
    relay.sync_client().incr(_epoch_key(user_id))
    _announce(user_id, {"session": None, "code": CLOSE_ACCESS_CHANGED})


def _announce(user_id: Any, event: dict[str, Any]) -> None:
    def send() -> None:
        async_to_sync(get_channel_layer().group_send)(
            user_group(user_id), {"type": "access.revoked", **event}
        )

    transaction.on_commit(send)
