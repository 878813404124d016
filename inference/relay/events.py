"""The events of the relay: what a token log holds and what a socket is sent.

Each is a ``TypedDict`` with a ``Literal`` ``type``; ``LogEvent`` is what a log
holds (numbered by ``seq``), the others are only announced.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class Alternative(TypedDict):
    text: str
    logprob: float


class TokenDetail(TypedDict):
    """One generated token, when token details were asked for: its text, its log
    probability, and the most likely alternatives (best first)."""

    text: str
    logprob: float | None
    top: list[Alternative]


class ChunkEvent(TypedDict):
    type: Literal["chunk"]
    generation: str
    seq: int
    text: str
    tokens: NotRequired[list[TokenDetail]]  # the chunk's tokens, when details were asked for


class DoneEvent(TypedDict):
    type: Literal["done"]
    generation: str
    seq: int
    status: str
    stats: NotRequired[dict[str, Any]]  # left out for a blind generation
    error: NotRequired[dict[str, str]]


class MessageEvent(TypedDict):
    type: Literal["message"]
    message: dict[str, Any]


class QueueEvent(TypedDict):
    """Where a waiting generation stands in its model's fair queue (1: next to start)."""

    type: Literal["queue"]
    generation: str
    position: int


LogEvent = ChunkEvent | DoneEvent
