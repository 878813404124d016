"""Close this process's chat sockets when Redis comes back from a restart.

A restarted Redis has lost the channel layer's subscriptions and any
announcement made while it was away; the token logs are written again by the
workers. Closed with "service restart", every page reconnects, resends what
was not echoed, and resubscribes with its positions, so it catches up from the
logs instead of waiting for an announcement that will never come.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any

from inference import relay

logger = logging.getLogger(__name__)

INTERVAL = 1.0  # seconds between two looks at Redis' run id

_sockets: weakref.WeakSet[Any] = weakref.WeakSet()
_tasks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
    weakref.WeakKeyDictionary()
)


def watch(socket: Any) -> None:
    """Close ``socket`` (with its ``reset``) if Redis restarts while it is open."""
    _sockets.add(socket)
    loop = asyncio.get_running_loop()
    task = _tasks.get(loop)
    if task is None or task.done():
        _tasks[loop] = loop.create_task(_run())


async def _run() -> None:
    known = None
    while True:
        run_id = await _run_id()
        if run_id is not None:
            if known is not None and run_id != known:
                sockets = list(_sockets)
                logger.warning("Redis restarted: closing %d chat sockets to resync", len(sockets))
                for socket in sockets:
                    with contextlib.suppress(Exception):
                        await socket.reset("Redis restarted")
            known = run_id
        await asyncio.sleep(INTERVAL)


async def _run_id() -> str | None:
    try:
        async with asyncio.timeout(2):
            info = await relay.async_client().info("server")
    except Exception:
        return None
    return str(info.get("run_id", "")) or None
