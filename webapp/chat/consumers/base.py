"""What every part of the chat socket shares: its state, the groups it follows, how it
sends a frame, and how it reaches the database."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django import db

from .. import selectors
from ..models import Role

T = TypeVar("T")


def database_work(function: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """Run ``function`` in the process's sync thread, then give its connection back to the pool.

    Connections this consumer opened through Channels' ``database_sync_to_async``
    stayed checked out of the pool (seen in the pool's statistics); closed here,
    inside the call, they go back. A thread pool instead of the one sync thread
    was measured and not kept: see docs/performance.md.
    """

    def run(*args: Any, **kwargs: Any) -> T:
        db.close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            db.close_old_connections()

    return sync_to_async(run)


class ChatSocket(AsyncWebsocketConsumer):
    """The state ``connect`` sets up, and the sending every part of the socket uses.

    ``ChatConsumer`` combines the parts (subscriptions, changes, access); a
    part calls another's method through ``self``.
    """

    revoked = False
    session_key: str | None = None
    user: Any
    epoch: str
    watching: set[str]
    seen: dict[str, int]
    by_model: dict[str, set[str]]  # conversations watched here, by their model

    async def _watch(self, group: str) -> None:
        if group not in self.watching:
            await self.channel_layer.group_add(group, self.channel_name)
            self.watching.add(group)

    async def _send_message(self, message: Any) -> None:
        if message.role in (Role.USER, Role.ASSISTANT):
            await self._send({"type": "message", "message": selectors.message_serialize(message)})

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))
