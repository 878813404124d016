"""The chat websocket: subscribe to conversations, send, regenerate and stop.

Every frame is validated; a bad one gets an ``error`` frame and changes
nothing, and the socket stays open. Chunks are forwarded in ``seq`` order per
reply: duplicates are dropped and a gap is filled from the token log.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from inference import relay
from webapp.core.errors import ApplicationError

from . import selectors, services
from .models import conversation_group

logger = logging.getLogger(__name__)
MAX_FRAME_BYTES = 256 * 1024


class FrameError(ApplicationError):
    code = "bad_frame"


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.user = self.scope["user"]
        self.watching: set[str] = set()
        self.seen: dict[str, int] = {}
        await self.accept()
        if not self.user.is_authenticated:
            # Accept, then close with a code the browser can read: signed out.
            await self.close(code=4401)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes old database connections in its sync thread before every
        # handler; a relayed chunk touches no database, so it skips that hop.
        if message["type"] == "relay.event":
            await self.relay_event(message)
            return
        await super().dispatch(message)

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "watching", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = _parse(text_data, bytes_data)
            handler = getattr(self, f"on_{frame['type']}", None)
            if handler is None:
                raise FrameError(f"Unknown frame type {frame['type']!r}.", code="unknown_type")
            await handler(frame)
        except ApplicationError as exc:
            await self._send({"type": "error", "code": exc.code, "detail": exc.detail})

    async def on_subscribe(self, frame: dict[str, Any]) -> None:
        conversation_id = _field(frame, "conversation", str)
        after_seq = _field(frame, "after_seq", int, default=0)
        if after_seq < 0:
            raise FrameError("after_seq must be zero or more.")
        conversation, latest = await _load_subscription(self.user, conversation_id)
        await self._watch(conversation.group)
        if not latest:
            return
        # The newest turn as saved, so a tab that was away sees what other tabs sent.
        for message in latest:
            await self._send({"type": "message", "message": selectors.message_serialize(message)})
        reply = latest[-1]
        self.seen[str(reply.pk)] = after_seq
        for event in await relay.log_read(str(reply.pk), after_seq=after_seq):
            await self._deliver(event)

    async def on_send(self, frame: dict[str, Any]) -> None:
        conversation_id = _field(frame, "conversation", str)
        content = _field(frame, "content", str)
        client_id = _uuid(_field(frame, "client_id", str, default=None))
        sent = await database_sync_to_async(services.message_send)(
            user=self.user, conversation_id=conversation_id, content=content, client_id=client_id
        )
        group = conversation_group(sent.user_message.conversation_id)
        await self._watch(group)
        for message in (sent.user_message, sent.assistant_message):
            event: relay.MessageEvent = {
                "type": "message",
                "message": selectors.message_serialize(message),
            }
            if sent.created:
                await relay.announce(group, event)
            else:
                await self._send(event)

    async def on_regenerate(self, frame: dict[str, Any]) -> None:
        message = await database_sync_to_async(services.message_regenerate)(
            user=self.user, message_id=_field(frame, "message", str)
        )
        await self._watch(conversation_group(message.conversation_id))
        await relay.announce(
            conversation_group(message.conversation_id),
            {"type": "message", "message": selectors.message_serialize(message)},
        )

    async def on_stop(self, frame: dict[str, Any]) -> None:
        stopped = await database_sync_to_async(services.message_stop)(
            user=self.user, message_id=_field(frame, "message", str)
        )
        if stopped.before_start:
            message = stopped.message
            await relay.publish_end(
                str(message.pk),
                conversation_group(message.conversation_id),
                after_seq=0,
                status="stopped",
            )

    async def _watch(self, group: str) -> None:
        if group not in self.watching:
            await self.channel_layer.group_add(group, self.channel_name)
            self.watching.add(group)

    async def relay_event(self, payload: dict[str, Any]) -> None:
        await self._deliver(payload["event"])

    async def _deliver(self, event: dict[str, Any]) -> None:
        if event["type"] == "message":
            await self._send(event)
            return
        message_id, seq = event["message"], event["seq"]
        last = self.seen.get(message_id, 0)
        if seq <= last:
            return
        pending = [event] if seq == last + 1 else await relay.log_read(message_id, after_seq=last)
        for item in pending:
            if item["seq"] > self.seen.get(message_id, 0):
                self.seen[message_id] = item["seq"]
                await self._send(item)

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))


@database_sync_to_async
def _load_subscription(user: Any, conversation_id: str) -> tuple[Any, list[Any]]:
    """Return the conversation and its newest reply, preceded by the message it answers."""
    conversation = selectors.conversation_get(user=user, conversation_id=conversation_id)
    reply = selectors.message_latest_assistant(conversation=conversation)
    if reply is None:
        return conversation, []
    return conversation, [m for m in (reply.parent, reply) if m is not None]


def _parse(text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
    if text_data is None:
        raise FrameError("Frames must be JSON text.")
    if len(text_data) > MAX_FRAME_BYTES:
        raise FrameError("The frame is too large.", code="too_large")
    try:
        frame = json.loads(text_data)
    except ValueError as exc:
        raise FrameError("The frame is not valid JSON.", code="bad_json") from exc
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise FrameError("A frame must be a JSON object with a string 'type'.")
    return frame


_MISSING = object()


def _field(frame: dict[str, Any], name: str, kind: type, default: Any = _MISSING) -> Any:
    value = frame.get(name, _MISSING)
    if value is _MISSING or value is None:
        if default is _MISSING:
            raise FrameError(f"'{name}' is required.")
        return default
    if not isinstance(value, kind) or isinstance(value, bool):
        raise FrameError(f"'{name}' must be a {kind.__name__}.")
    return value


def _uuid(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise FrameError("'client_id' must be a UUID.") from exc
