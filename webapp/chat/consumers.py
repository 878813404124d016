"""The chat websocket: subscribe to conversations or generations, send, edit, regenerate,
stop, select a branch.

Every frame is validated; a bad one gets an ``error`` frame and changes
nothing, and the socket stays open. Chunks are forwarded in ``seq`` order per
generation: duplicates are dropped and a gap is filled from the token log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis
from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django import db

from inference import relay
from webapp.access.services.audit import Caller, audit_refused_use
from webapp.accounts import revocation, sockets
from webapp.catalog.policy import AccessRefused, access_refusal
from webapp.core.errors import ApplicationError
from webapp.core.ids import is_uuid
from webapp.generations import selectors as generation_selectors
from webapp.generations import services as generation_services
from webapp.generations.limits import limits_for

from . import configure, selectors, services, watchdog
from .models import Role, conversation_group

logger = logging.getLogger(__name__)
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


MAX_FRAME_BYTES = 256 * 1024
CLOSE_RESYNC = 1012  # "service restart": reconnect, resend, resync
CHANGES = frozenset(
    {"send", "edit", "regenerate", "stop", "select"}
)  # frames that change something
REVOKED = {
    revocation.CLOSE_SIGNED_OUT: "You are signed out.",
    revocation.CLOSE_ACCESS_CHANGED: "Your access changed; reconnecting.",
}
UNAVAILABLE = "The service is restarting; reconnecting. Nothing you sent is lost."
MAX_LISTED = 64  # generations one subscribe may name
MAX_SEQ = 2**31
MAX_SEEN = 256  # generations a socket remembers the position of
MAX_WATCHED = 64  # conversations and generations one socket may follow


class FrameError(ApplicationError):
    code = "bad_frame"


class ChatConsumer(AsyncWebsocketConsumer):
    revoked = False
    session_key: str | None = None

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

    async def access_revoked(self, message: dict[str, Any]) -> None:
        """The user signed out here, or their access changed: honour nothing more."""
        if message["session"] in (None, self.session_key):
            self.revoked = True
            await self.close(code=message["code"])

    async def _still_allowed(self) -> bool:
        """Whether the access this socket was opened with still holds (checked per change)."""
        epoch, ended = await revocation.access_state(self.user.pk, self.session_key)
        if ended or epoch != self.epoch:
            self.revoked = True
            code = revocation.CLOSE_SIGNED_OUT if ended else revocation.CLOSE_ACCESS_CHANGED
            await self._send(
                {
                    "type": "error",
                    "code": "signed_out" if ended else "access_changed",
                    "detail": REVOKED[code],
                }
            )
            await self.close(code=code)
            return False
        return True

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
        self._room_for(conversation.group)
        await self._watch(conversation.group)
        await self._watch(revocation.model_group(conversation.model_id))
        self.by_model.setdefault(str(conversation.model_id), set()).add(str(conversation.pk))
        for reply in replies:
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
        await self._tell_access(conversation)

    async def _tell_access(self, conversation: Any, *, allowed_too: bool = False) -> None:
        """Say so if the user may no longer send to the conversation's model (and why); with
        ``allowed_too``, also say so when they may (again)."""
        refusal = await database_work(access_refusal)(
            user=self.user, model_or_gate=conversation.model, action="chat"
        )
        frame = {"type": "access", "conversation": str(conversation.pk)}
        if refusal is not None:
            await self._send({**frame, "detail": refusal})
        elif allowed_too:
            await self._send({**frame, "detail": None, "allowed": True})

    async def access_model_changed(self, message: dict[str, Any]) -> None:
        """Staff changed who may use a model (its policy, gate, or it left service): every
        conversation with it that this socket watches hears what that means now."""
        for conversation_id in sorted(self.by_model.get(message["model"], ())):
            try:
                conversation = await database_work(selectors.conversation_get)(
                    user=self.user, conversation_id=conversation_id
                )
            except ApplicationError:
                continue  # deleted meanwhile
            if str(conversation.model_id) == message["model"]:
                await self._tell_access(conversation, allowed_too=True)

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

    def _room_for(self, group: str) -> None:
        """Refuse to follow one more group past MAX_WATCHED (the user's own group aside)."""
        followed = len(self.watching) - len(self.by_model)  # models' groups come with them
        if group not in self.watching and followed > MAX_WATCHED:
            raise FrameError(
                f"This page follows {MAX_WATCHED} conversations or replies already; "
                "reload it to start over.",
                code="too_many_subscriptions",
            )

    async def _watch(self, group: str) -> None:
        if group not in self.watching:
            await self.channel_layer.group_add(group, self.channel_name)
            self.watching.add(group)

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

    async def _send_message(self, message: Any) -> None:
        if message.role in (Role.USER, Role.ASSISTANT):
            await self._send({"type": "message", "message": selectors.message_serialize(message)})

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))


def _parse(text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
    if text_data is None:
        raise FrameError("Frames must be JSON text.")
    if len(text_data) > MAX_FRAME_BYTES:
        raise FrameError("The frame is too large.", code="too_large")
    try:
        frame = json.loads(text_data)
    except ValueError as exc:
        raise FrameError("The frame is not valid JSON.", code="bad_json") from exc
    except RecursionError as exc:  # JSON nested thousands deep
        raise FrameError("The frame is nested too deeply.", code="bad_json") from exc
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


def _seq(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < MAX_SEQ:
        raise FrameError(f"'{name}' must be a whole number from 0 to {MAX_SEQ - 1}.")
    return value


def _positions(value: Any) -> dict[str, int]:
    """Return the ``generations`` field: generation id -> the last seq the page rendered."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_LISTED:
        raise FrameError(f"'generations' must be an object of at most {MAX_LISTED} entries.")
    positions = {}
    for key, seq in value.items():
        if not is_uuid(key):
            raise FrameError("'generations' must be keyed by generation id.")
        positions[str(uuid.UUID(key))] = _seq(seq, "generations")
    return positions


def _uuid(value: str | None, name: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise FrameError(f"'{name}' must be a UUID.") from exc
