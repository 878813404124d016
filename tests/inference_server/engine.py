"""Protocol-neutral machinery: disconnect-aware ASGI responses and token pacing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from .scripts import Script
from .state import DISCONNECTED, DROPPED, ERROR, FAILED, HANGING, Record, ServerState

Producer = Callable[[Send], Awaitable[None]]

# Upper bound of events written in one chunk when a stream is behind schedule (or rate=0).
MAX_BURST = 256

SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
JSON_HEADERS = [(b"content-type", b"application/json")]
TEXT_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]


class DropConnection(Exception):
    """Raised by a producer to close the connection without ending the response.

    Once the response has started, uvicorn answers an exception by closing the socket:
    the client sees the body cut off, as when a proxy or the server itself dies.
    """


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def read_json(request: Request) -> tuple[Any, str | None]:
    """The parsed JSON body and, if it could not be parsed, why."""
    raw = await request.body()
    try:
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError) as exc:
        return raw.decode("utf-8", "replace")[:2000], str(exc)


async def start(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def body(send: Send, data: bytes, *, more: bool) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def respond(
    send: Send, status: int, data: bytes, headers: list[tuple[bytes, bytes]] = JSON_HEADERS
) -> None:
    await start(send, status, [*headers, (b"content-length", str(len(data)).encode())])
    await body(send, data, more=False)


def error_body(script: Script) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
    """The verbatim error body a script asks for (``raw_body`` or ``json_body``), if any."""
    if script.raw_body is not None:
        return script.raw_body.encode(), TEXT_HEADERS
    if script.json_body is not None:
        return dumps(script.json_body).encode(), JSON_HEADERS
    return None


async def drop(state: ServerState, record: Record) -> None:
    """Close the connection mid-response (see ``DropConnection``)."""
    state.finish(record, DROPPED)
    raise DropConnection


async def hang(state: ServerState, record: Record) -> None:
    """Stall until cancelled (the client disconnecting cancels us)."""
    state.set_outcome(record, HANGING)
    await asyncio.get_running_loop().create_future()


ErrorOf = Callable[[Script, int], tuple[bytes, list[tuple[bytes, bytes]]]]


async def scripted_refusal(
    send: Send, state: ServerState, record: Record, script: Script, error_of: ErrorOf
) -> bool:
    """Wait the script's delay, then answer its scripted error status if it has one, with
    the body the protocol's ``error_of`` makes. Return whether it answered."""
    if script.delay:
        await asyncio.sleep(script.delay)
    if script.status is None:
        return False
    data, headers = error_of(script, script.status)
    state.finish(record, ERROR, status=script.status)
    await respond(send, script.status, data, headers)
    return True


async def break_off(state: ServerState, record: Record, end: str) -> None:
    """End a response the script does not let finish: drop the connection or hang."""
    await (drop if end == "drop" else hang)(state, record)


@dataclass(slots=True)
class Plan:
    """What a generation does: emit ``tokens``, then ``end`` ("finish", "fail", "hang" or
    "drop")."""

    tokens: list[str]
    end: str


def plan_for(script: Script, tokens: list[str]) -> Plan:
    if script.hang:
        return Plan([], "hang")
    ends = []
    if script.fail_after is not None:
        ends.append((script.fail_after, 0, "fail"))
    if script.hang_after is not None:
        ends.append((script.hang_after, 1, "hang"))
    if script.drop_after is not None:
        ends.append((script.drop_after, 2, "drop"))
    if ends:
        count, _, end = min(ends)
        return Plan(tokens[:count], end)
    return Plan(tokens, "finish")


async def paced(
    send: Send,
    record: Record,
    *,
    count: int,
    render: Callable[[int, int], bytes],
    script: Script,
    content_count: int,
    before_last: Callable[[], None] | None = None,
) -> None:
    """Write ``count`` events paced at ``script.rate``; ``render(i, j)`` encodes events i..j-1.

    Pacing is computed from the stream's start time, so it does not drift; a stream that
    falls behind catches up by writing the overdue events in one chunk.
    """
    loop = asyncio.get_running_loop()
    rate = script.rate
    t0 = loop.time() + script.first_token_delay
    i = 0
    while i < count:
        now = loop.time()
        if rate > 0:
            due = t0 + i / rate
            if due > now:
                await asyncio.sleep(due - now)
                now = loop.time()
            j = min(count, i + MAX_BURST, max(i + 1, int((now - t0) * rate) + 1))
        else:
            if now < t0:
                await asyncio.sleep(t0 - now)
            j = min(count, i + MAX_BURST)
        chunk = render(i, j)
        if j == count and before_last is not None:
            before_last()
        await body(send, chunk, more=True)
        if i == 0:
            record.first_token_at = time.time()
        record.tokens_sent = min(j, content_count)
        i = j
        if rate <= 0:
            # Let the loop notice a disconnect even when nothing else would yield.
            await asyncio.sleep(0)


async def simulate_generation(script: Script, n_tokens: int) -> None:
    """Sleep as long as generating ``n_tokens`` would take (non-streaming answers)."""
    seconds = script.first_token_delay
    if script.rate > 0 and n_tokens:
        seconds += (n_tokens - 1) / script.rate
    if seconds > 0:
        await asyncio.sleep(seconds)


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class WatchedResponse:
    """ASGI response that runs ``producer(send)`` and cancels it if the client disconnects.

    The producer is responsible for ending its record (``ServerState.finish``) when it
    finishes; a disconnect (or a crash) ends it here.
    """

    def __init__(self, state: ServerState, record: Record, producer: Producer) -> None:
        self.state = state
        self.record = record
        self.producer = producer
        state.in_flight += 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        producer = asyncio.ensure_future(self.producer(send))
        watcher = asyncio.ensure_future(_until_disconnect(receive))
        try:
            await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if producer.done():
                watcher.cancel()
                producer.result()
            else:
                producer.cancel()
                with suppress(asyncio.CancelledError):
                    await producer
                self.state.finish(self.record, DISCONNECTED)
        except asyncio.CancelledError:
            # The server is shutting down underneath us.
            producer.cancel()
            watcher.cancel()
            self.state.finish(self.record, DISCONNECTED)
            raise
        except Exception:
            self.state.finish(self.record, FAILED, status=500)
            raise
        finally:
            self.state.in_flight -= 1
