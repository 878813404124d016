"""Drive the chat websocket the way a browser does: session cookie, Origin header, JSON frames."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from channels.db import database_sync_to_async as sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from django.test import Client

from webapp.asgi import application


class Socket:
    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.frames: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any] | str) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        frame = json.loads(await self.communicator.receive_from(timeout=timeout))
        self.frames.append(frame)
        return frame

    async def receive_until(
        self, frame_type: str, timeout: float = 8.0, **match: Any
    ) -> list[dict[str, Any]]:
        """Return every frame received up to and including the first matching one."""
        deadline = time.monotonic() + timeout
        received = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {frame_type} frame {match} in {received}")
            frame = await self.receive(timeout=remaining)
            received.append(frame)
            if frame["type"] == frame_type and all(frame.get(k) == v for k, v in match.items()):
                return received

    async def receive_chunks(self, count: int, timeout: float = 8.0) -> list[dict[str, Any]]:
        """Return the next ``count`` chunk frames, skipping other frames."""
        chunks: list[dict[str, Any]] = []
        while len(chunks) < count:
            frame = await self.receive(timeout=timeout)
            if frame["type"] == "chunk":
                chunks.append(frame)
        return chunks

    async def is_quiet(self, seconds: float = 0.2) -> bool:
        return await self.communicator.receive_nothing(timeout=seconds)

    async def close(self) -> None:
        await self.communicator.disconnect()


async def connect(user: Any, *, origin: str = "http://localhost") -> Socket:
    """Open the chat socket as ``user`` and fail the test if the server refuses it."""
    connected, socket = await open_socket(user, origin=origin)
    assert connected, "the server refused the websocket"
    return socket


async def open_socket(user: Any | None, *, origin: str = "http://localhost") -> tuple[bool, Socket]:
    headers = [(b"origin", origin.encode()), (b"host", b"localhost")]
    if user is not None:
        client = Client()
        await sync_to_async(client.force_login)(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    return connected, Socket(communicator)


def chunk_text(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "chunk")


def seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [f["seq"] for f in frames if f["type"] in ("chunk", "done")]


async def settle(seconds: float) -> None:
    await asyncio.sleep(seconds)
