"""The frames that change something: send, edit, select a branch, regenerate, stop.
Each calls one service and announces what it saved to the conversation's group."""

from __future__ import annotations

from typing import Any

from inference import relay
from webapp.generations import services as generation_services

from .. import configure, selectors, services
from ..models import conversation_group
from .base import ChatSocket, database_work
from .frames import FrameError, _field, _uuid

CHANGES = frozenset(
    {"send", "edit", "regenerate", "stop", "select"}
)  # frames that change something


class Changes(ChatSocket):
    async def on_send(self, frame: dict[str, Any]) -> None:
        sent = await database_work(services.message_send)(
            user=self.user,
            conversation_id=_field(frame, "conversation", str),
            content=_field(frame, "content", str),
            client_id=_uuid(_field(frame, "client_id", str, default=None), "client_id"),
            parent_id=_uuid(_field(frame, "parent", str, default=None), "parent"),
        )
        await self._announce_sent(sent)

    async def on_edit(self, frame: dict[str, Any]) -> None:
        """Send new text in place of an earlier user message: a branch beside it."""
        sent = await database_work(services.message_edit)(
            user=self.user,
            message_id=_uuid(_field(frame, "message", str), "message"),
            content=_field(frame, "content", str),
            client_id=_uuid(_field(frame, "client_id", str, default=None), "client_id"),
        )
        await self._announce_sent(sent)

    async def on_select(self, frame: dict[str, Any]) -> None:
        """Remember the branch this page shows (its last message) for the next visit."""
        conversation_id = _uuid(_field(frame, "conversation", str), "conversation")
        leaf_id = _uuid(_field(frame, "leaf", str), "leaf")
        await database_work(configure.conversation_select)(
            user=self.user, conversation_id=conversation_id, leaf_id=leaf_id
        )
        await self._send(
            {"type": "selected", "conversation": str(conversation_id), "leaf": str(leaf_id)}
        )

    async def _announce_sent(self, sent: services.Sent) -> None:
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
        same = frame.get("same_settings", False)
        if not isinstance(same, bool):
            raise FrameError("'same_settings' must be true or false.")
        message = await database_work(services.message_regenerate)(
            user=self.user, message_id=_field(frame, "message", str), same_settings=same
        )
        group = conversation_group(message.conversation_id)
        await self._watch(group)
        await relay.announce(
            group, {"type": "message", "message": selectors.message_serialize(message)}
        )

    async def on_stop(self, frame: dict[str, Any]) -> None:
        stopped = await database_work(generation_services.generation_stop)(
            user=self.user, generation_id=_field(frame, "generation", str)
        )
        if stopped.before_start:
            generation = stopped.generation
            await relay.publish_end(
                str(generation.pk), generation.channel_group, after_seq=0, status="stopped"
            )
