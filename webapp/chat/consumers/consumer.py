"""The chat consumer: open and close the socket, hand each frame to its handler, and
turn a failure into an ``error`` frame (or, when Redis or PostgreSQL is away, a close
the page recovers from)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import redis
from channels.consumer import get_handler_name
from django import db

from webapp.access.services.audit import Caller, audit_refused_use
from webapp.accounts import revocation, sockets
from webapp.catalog.policy import AccessRefused
from webapp.core.errors import ApplicationError
from webapp.generations.limits import limits_for

from .. import watchdog
from .base import database_work
from .changes import CHANGES, Changes
from .frames import FrameError, _parse
from .subscriptions import Subscriptions

logger = logging.getLogger(__name__)

CLOSE_RESYNC = 1012  # "service restart": reconnect, resend, resync
UNAVAILABLE = "The service is restarting; reconnecting. Nothing you sent is lost."


class ChatConsumer(Subscriptions, Changes):
    async def connect(self) -> None:
        self.user = self.scope["user"]
        self.watching: set[str] = set()
        self.seen: dict[str, int] = {}
        self.by_model: dict[str, set[str]] = {}  # conversations watched here, by their model
        ended = not self.user.is_authenticated
        if not ended:
            # Read before the socket opens: a change from then on is seen by the next frame.
            session = self.scope.get("session")
            self.session_key = session.session_key if session is not None else None
            self.epoch, ended = await revocation.access_state(self.user.pk, self.session_key)
        await self.accept()
        if ended:
            # Accept, then close with a code the browser can read: signed out.
            await self.close(code=revocation.CLOSE_SIGNED_OUT)
            return
        limits = await database_work(limits_for)(self.user)
        if not await sockets.socket_admit(self, limit=limits.sockets):
            return
        await self._watch(revocation.user_group(self.user.pk))
        watchdog.watch(self)

    async def reset(self, reason: str) -> None:
        """Close so the page reconnects and resyncs from the logs (Redis lost its state)."""
        logger.info("closing a chat socket: %s", reason)
        await self.close(code=CLOSE_RESYNC)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels hops to its sync thread to close old database connections before
        # every message; each database call here closes its own (database_work), so
        # a frame or a relayed chunk costs no extra trip through that one thread.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        try:
            await handler(message)
        except (redis.RedisError, OSError, db.OperationalError, db.InterfaceError) as exc:
            # Redis or PostgreSQL is away or restarted: whatever this frame changed
            # stands; the page reconnects, resends what was not echoed, and resyncs.
            logger.warning("chat socket: %s: %s; closing it", type(exc).__name__, exc)
            with contextlib.suppress(Exception):
                await self._send({"type": "error", "code": "unavailable", "detail": UNAVAILABLE})
            await self.close(code=CLOSE_RESYNC)

    async def disconnect(self, code: int) -> None:
        await sockets.socket_release(self)
        for group in getattr(self, "watching", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.revoked:
            return
        try:
            frame = _parse(text_data, bytes_data)
            handler = getattr(self, f"on_{frame['type']}", None)
            if handler is None:
                raise FrameError(f"Unknown frame type {frame['type']!r}.", code="unknown_type")
            if frame["type"] in CHANGES and not await self._still_allowed():
                return
            await handler(frame)
        except AccessRefused as exc:
            await database_work(audit_refused_use)(
                user=self.user, refused=exc, caller=Caller.of_scope(self.scope)
            )
            await self._send({"type": "error", **exc.as_dict()})
        except ApplicationError as exc:
            await self._send({"type": "error", **exc.as_dict()})
