"""The ceiling of uvicorn on this machine: an ASGI app that sends BARE_MIB of memory, 1 MiB
per message, with no Django, no file and no access check (bench/downloads.py runs it)."""

from __future__ import annotations

import os
from typing import Any

BLOCK = os.urandom(1024 * 1024)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    count = int(os.environ.get("BARE_MIB", "1024"))
    length = str(len(BLOCK) * count).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]}
    )
    for n in range(count):
        await send({"type": "http.response.body", "body": BLOCK, "more_body": n < count - 1})
