"""Follow conversations and generations: join their groups (within a limit), replay
what the page missed from the token logs, then forward each generation's events
in ``seq`` order (duplicates dropped, a gap filled from the log)."""

from __future__ import annotations

from typing import Any

from inference import relay
from webapp.accounts import revocation
from webapp.core.ids import is_uuid
from webapp.generations import selectors as generation_selectors

from .. import selectors
from .access import Access
from .base import database_work
from .frames import FrameError, _field, _positions, _seq

MAX_SEEN = 256  # generations a socket remembers the position of
MAX_WATCHED = 64  # conversations and generations one socket may follow


# A subscription ends by telling the page whether it may still send (Access._tell_access).
class Subscriptions(Access):
    async def on_subscribe(self, frame: dict[str, Any]) -> None:
        if frame.get("generation") is not None:
            await self._subscribe_generation(frame)
            return
        conversation_id = _field(frame, "conversation", str)
        known = _positions(frame.get("generations"))
        latest = _field(frame, "latest", str, default=None)
        if latest is not None and not is_uuid(latest):
            raise FrameError("'latest' must be a generation id.")
        conversation, replies = await database_work(selectors.conversation_replays)(
            user=self.user, conversation_id=conversation_id, known=known, latest=latest
        )
        await self._follow_conversation(conversation)
        for reply in replies:
            await self._catch_up(reply, known)
        await self._tell_access(conversation)

    async def _follow_conversation(self, conversation: Any) -> None:
        """Join the conversation's group and its model's (where access changes are told)."""
        self._room_for(conversation.group)
        await self._watch(conversation.group)
        await self._watch(revocation.model_group(conversation.model_id))
        self.by_model.setdefault(str(conversation.model_id), set()).add(str(conversation.pk))

    async def _catch_up(self, reply: Any, known: dict[str, int]) -> None:
        """Send what the page lacks of ``reply``: its messages if it never saw them, then
        the events it missed, or the saved reply or its queue position if none are logged."""
        generation_id = str(reply.generation_id)
        if generation_id not in known:
            # Saved first, so a page that was away sees what other tabs sent.
            for message in (reply.parent, reply):
                if message is not None:
                    await self._send_message(message)
        replayed = await self._replay(generation_id, known.get(generation_id, 0))
        if not replayed and generation_id in known and not reply.is_active:
            await self._send_message(reply)  # its log expired while the page was away
        elif not replayed and reply.status == "queued":
            await self._send_position(reply.generation)

    async def _subscribe_generation(self, frame: dict[str, Any]) -> None:
        generation_id = _field(frame, "generation", str)
        after_seq = _seq(frame.get("after_seq", 0), "after_seq")
        generation = await database_work(generation_selectors.generation_get)(
            user=self.user, generation_id=generation_id
        )
        self._room_for(generation.channel_group)
        await self._watch(generation.channel_group)
        if await self._replay(generation_id, after_seq):
            return
        if generation.is_active:
            await self._send_position(generation)
            return
        # Its log has expired: the saved generation says how it ended.
        summary = generation_selectors.generation_summary(generation)
        await self._send({"type": "generation", "generation": {**summary, "text": generation.text}})

    async def _send_position(self, generation: Any) -> None:
        """Tell where a generation waiting for a slot stands in its model's queue."""
        event = await relay.queue_position(str(generation.language_model_id), str(generation.pk))
        if event is not None:
            await self._send(event)  # type: ignore[arg-type]

    async def _replay(self, generation_id: str, after_seq: int) -> bool:
        """Send the logged events after ``after_seq``; return whether there were any."""
        self._remember(generation_id, after_seq)
        events = await relay.log_read(generation_id, after_seq=after_seq)
        for event in events:
            await self._deliver(event)
        return bool(events)

    def _room_for(self, group: str) -> None:
        """Refuse to follow one more group past MAX_WATCHED (the user's own group aside)."""
        followed = len(self.watching) - len(self.by_model)  # models' groups come with them
        if group not in self.watching and followed > MAX_WATCHED:
            raise FrameError(
                f"This page follows {MAX_WATCHED} conversations or replies already; "
                "reload it to start over.",
                code="too_many_subscriptions",
            )

    async def relay_event(self, payload: dict[str, Any]) -> None:
        await self._deliver(payload["event"])

    async def _deliver(self, event: dict[str, Any]) -> None:
        if event["type"] in ("message", "queue"):  # not in the log: no seq to follow
            await self._send(event)
            return
        generation_id, seq = event["generation"], event["seq"]
        last = self.seen.get(generation_id, 0)
        if seq <= last:
            return
        pending = (
            [event] if seq == last + 1 else await relay.log_read(generation_id, after_seq=last)
        )
        for item in pending:
            if item["seq"] > self.seen.get(generation_id, 0):
                self._remember(generation_id, item["seq"])
                await self._send(item)

    def _remember(self, generation_id: str, seq: int) -> None:
        self.seen[generation_id] = seq
        if len(self.seen) > MAX_SEEN:
            del self.seen[next(iter(self.seen))]
