"""What every part of the chat socket shares: its state, the groups it follows, how it
sends a frame, and how it reaches the database."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from channels.generic.websocket import AsyncWebsocketConsumer
from django import db
from django.conf import settings

from .. import selectors
from ..models import Role

T = TypeVar("T")


def database_work(function: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """Run ``function`` in a thread of the sockets' database pool, then give its
    connection back to the connection pool.

    Not Channels' ``database_sync_to_async``: that runs the database work of every
    socket of the process in one thread, one frame after the other, so a burst of sends
    queued behind each other while PostgreSQL sat idle (docs/performance.md). Each
    thread has a connection of its own while it works; closed here, inside the call, it
    goes back to the pool.
    """

    def run(*args: Any, **kwargs: Any) -> T:
        db.close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            db.close_old_connections()

    async def call(*args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_threads(), functools.partial(run, *args, **kwargs))

    return call


@functools.cache
def _threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(settings.CHAT_DATABASE_THREADS, thread_name_prefix="chat-database")


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
