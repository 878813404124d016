"""The two kinds of client a benchmark runs: a browser-like websocket client of
Gatehouse, and a direct streaming HTTP client of the inference server (the
baseline). Both only timestamp what arrives; parsing happens after the run so
the client spends as little CPU as possible while streams are live.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import websockets
from websockets.asyncio.client import ClientConnection


@dataclass
class Stream:
    """One reply as one client saw it."""

    key: str  # a marker carried in the prompt: finds the inference server's record
    content: str
    conversation: str | None = None  # websocket streams only
    sent_at: float | None = None  # wall clock when the request was written
    frames: list[tuple[float, str | bytes]] = field(default_factory=list)  # (arrival, raw)
    error: str | None = None
    finished: bool = False


# -- Gatehouse over the websocket -------------------------------------------------------


async def ws_connect(url: str, *, origin: str, cookie: str) -> ClientConnection:
    return await websockets.connect(
        url,
        origin=origin,  # type: ignore[arg-type]
        additional_headers={"Cookie": cookie},
        open_timeout=30,
        close_timeout=2,
        max_queue=None,
        ping_interval=None,
    )


async def ws_connect_many(
    count: int, url: str, *, origin: str, cookie: str, parallel: int = 16
) -> list[ClientConnection]:
    gate = asyncio.Semaphore(parallel)

    async def one() -> ClientConnection:
        async with gate:
            return await ws_connect(url, origin=origin, cookie=cookie)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def ws_close_all(sockets: list[ClientConnection]) -> None:
    async def close(ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            await ws.close()

    await asyncio.gather(*(close(ws) for ws in sockets))


async def ws_stream(
    ws: ClientConnection, stream: Stream, *, start_at: float, deadline: float
) -> None:
    """Send the prompt into ``stream.conversation`` at ``start_at`` and record every frame
    until the reply's ``done`` (loop clock for scheduling, wall clock for timestamps)."""
    loop = asyncio.get_running_loop()
    frame = json.dumps(
        {
            "type": "send",
            "conversation": stream.conversation,
            "content": stream.content,
            "client_id": str(uuid.uuid4()),
        }
    )
    await asyncio.sleep(max(0.0, start_at - loop.time()))
    frames = stream.frames
    try:
        async with asyncio.timeout_at(deadline):
            stream.sent_at = time.time()
            await ws.send(frame)
            while True:
                raw = await ws.recv()
                frames.append((time.time(), raw))
                if '"type":"done"' in raw or '"type":"error"' in raw:  # type: ignore[operator]
                    break
        stream.finished = '"type":"done"' in frames[-1][1]  # type: ignore[operator]
        if not stream.finished:
            stream.error = "error frame: " + str(frames[-1][1])[:200]
    except TimeoutError:
        stream.error = "timed out"
    except Exception as exc:
        stream.error = f"{type(exc).__name__}: {exc}"[:300]


# -- the inference server directly (baseline) -------------------------------------------


def direct_request(backend: str, content: str, max_tokens: int) -> tuple[str, dict[str, Any]]:
    """The path and JSON body a client of the inference server would send for ``content``."""
    if backend == "tgi":
        prompt = f"<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n"
        return "/generate_stream", {
            "inputs": prompt,
            "parameters": {"max_new_tokens": max_tokens, "details": True},
            "stream": True,
        }
    return "/v1/chat/completions", {
        "model": "scripted/openai-model",
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def direct_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=False),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
    )


async def direct_stream(
    session: aiohttp.ClientSession,
    base_url: str,
    backend: str,
    stream: Stream,
    *,
    max_tokens: int,
    start_at: float,
    deadline: float,
) -> None:
    """Stream one generation straight from the inference server; record every SSE line."""
    loop = asyncio.get_running_loop()
    path, body = direct_request(backend, stream.content, max_tokens)
    await asyncio.sleep(max(0.0, start_at - loop.time()))
    frames = stream.frames
    try:
        async with asyncio.timeout_at(deadline):
            stream.sent_at = time.time()
            async with session.post(base_url + path, json=body) as response:
                if response.status != 200:
                    stream.error = f"HTTP {response.status}: {(await response.text())[:200]}"
                    return
                async for line in response.content:
                    if line.startswith(b"data:"):
                        frames.append((time.time(), line))
        stream.finished = True
    except TimeoutError:
        stream.error = "timed out"
    except Exception as exc:
        stream.error = f"{type(exc).__name__}: {exc}"[:300]
