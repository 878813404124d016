"""The token log and the live announcements: the one place that talks to both.

Each generation has a Redis Stream (its token log, the truth) whose entry ids
are ``0-<seq>``, so a replay "after seq n" is one exclusive XRANGE and a chunk
can never be logged twice. Every logged event is then announced on the
channel-layer group the generation names (its conversation, compare session,
battle, or a group of its own), which only wakes the sockets up: a socket that
missed an announcement reads the log. Everything here is keyed by generation id.
A heartbeat key tells the reaper which generations still have a live worker,
and a cancel flag plus a pub/sub message tell the worker to stop.

The package's modules, in the order an event travels:

- ``events``: the event ``TypedDict``s a log holds and a socket receives.
- ``clients``: the Redis clients (one asyncio client per event loop) and key names.
- ``publisher``: ``Publisher`` numbers one generation's events and keeps them
  until the log holds them; ``publish_end`` ends a generation no worker will finish.
- ``writer``: the shared writer that carries every publisher's events of a loop
  in one Redis command (a Lua script).
- ``announcements``: how an event reaches a channel-layer group, and the fair
  queue's positions.
- ``reader``: the replay of a log after a seq, and its text so far.
- ``control``: heartbeats, cancel requests, and how long Redis has held the state.

The rest of Gatehouse imports these names from ``inference.relay`` itself.
"""

from __future__ import annotations

from .announcements import announce, queue_position, queue_positions_publish
from .clients import async_client, ping, sync_client
from .control import (
    CANCEL_CHANNEL,
    cancel_request,
    cancel_requested,
    heartbeat,
    heartbeats_alive,
    redis_memory_age,
)
from .events import (
    Alternative,
    ChunkEvent,
    DoneEvent,
    LogEvent,
    MessageEvent,
    QueueEvent,
    TokenDetail,
)
from .publisher import END_PATIENCE, Publisher, publish_end
from .reader import log_read, log_text
from .writer import WRITE_TIMEOUT, LogLost

__all__ = [
    "CANCEL_CHANNEL",
    "END_PATIENCE",
    "WRITE_TIMEOUT",
    "Alternative",
    "ChunkEvent",
    "DoneEvent",
    "LogEvent",
    "LogLost",
    "MessageEvent",
    "Publisher",
    "QueueEvent",
    "TokenDetail",
    "announce",
    "async_client",
    "cancel_request",
    "cancel_requested",
    "heartbeat",
    "heartbeats_alive",
    "log_read",
    "log_text",
    "ping",
    "publish_end",
    "queue_position",
    "queue_positions_publish",
    "redis_memory_age",
    "sync_client",
]
