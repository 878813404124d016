"""Which chat messages fit a model's context: the one rule, estimated or counted.

A conversation that outgrows the context loses its oldest turns first. System
messages and the last message (the one being answered) are always kept, and a
turn goes with its reply, so the history never starts with an assistant
message. The web app fits a conversation with an estimate as the generation
is created; the worker fits it again, downward, with the backend's own token
count where the backend can count (TGI's ``/chat_tokenize``). Both walk the
same cuts, so both leave out the same turns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from itertools import accumulate
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # the backends import this module
    from .backends.base import ChatMessage

Answer = TypeVar("Answer")

CHARS_PER_TOKEN = 3  # a cautious guess: most tokenizers average 3.5 to 4 on English
TOKENS_PER_MESSAGE = 8  # the chat template's role markers around each message


def estimated_tokens(message: ChatMessage) -> int:
    return len(message["content"]) // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE


def cuts(messages: Sequence[ChatMessage]) -> list[int]:
    """Return the places the history may be cut, as counts of non-system messages left
    out, fewest first: 0 (nothing left out) up to all but the last message."""
    turns = [m for m in messages if m["role"] != "system"]
    found, start = [0], 0
    while len(turns) - start > 1:
        start += 1
        while len(turns) - start > 1 and turns[start]["role"] == "assistant":
            start += 1
        found.append(start)
    return found


def cut(messages: Sequence[ChatMessage], left_out: int) -> list[ChatMessage]:
    """Return ``messages`` without their first ``left_out`` non-system messages."""
    system = [m for m in messages if m["role"] == "system"]
    turns = [m for m in messages if m["role"] != "system"]
    return system + turns[left_out:]


def context_fit(messages: Sequence[ChatMessage], budget: int) -> list[ChatMessage]:
    """Drop the oldest turns until ``messages`` fit in ``budget`` tokens (estimated)."""
    turns = [m for m in messages if m["role"] != "system"]
    system_tokens = sum(estimated_tokens(m) for m in messages if m["role"] == "system")
    # before[i]: the estimated tokens of the first i turns
    before = [0, *accumulate(map(estimated_tokens, turns))]
    total = system_tokens + before[-1]
    places = cuts(messages)
    chosen = next((n for n in places if total - before[n] <= budget), places[-1])
    return cut(messages, chosen)


async def counted_fit(
    messages: Sequence[ChatMessage],
    budget: int,
    count: Callable[[list[ChatMessage]], Awaitable[tuple[int | None, Answer]]],
) -> tuple[int, Answer]:
    """Find the fewest turns to leave out so that ``count`` says the rest fit ``budget``.

    ``count(kept)`` returns ``(tokens, answer)``: the backend's token count of a
    candidate and whatever else it answered (the rendered prompt). Fewer messages
    never count more tokens, so the cuts are searched by halves: at most about
    log2(turns) + 1 requests. Returns the number left out and the chosen
    candidate's answer; when even the shortest does not fit, the shortest (the
    backend then refuses it, with its own words).
    """
    places = cuts(messages)
    tokens, answer = await count(list(messages))
    if tokens is None or tokens <= budget or len(places) == 1:
        return 0, answer
    low, high = 1, len(places) - 1  # places[0] is too long; is places[high] short enough?
    best: tuple[int, Answer] | None = None
    while low <= high:
        middle = (low + high) // 2
        tokens, found = await count(cut(messages, places[middle]))
        if tokens is not None and tokens <= budget:
            best, high = (places[middle], found), middle - 1
        else:
            low = middle + 1
            if middle == len(places) - 1:
                best = (places[middle], found)
    assert best is not None
    return best
