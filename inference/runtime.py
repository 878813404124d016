"""One event loop per worker process that every generation in it streams on.

Celery's thread pool gives each running task a thread; the thread hands its
generation to this loop and waits. All streams of the process then share one
Redis connection pool and one channel-layer connection, and one subscription
to the cancel channel reaches any of them within milliseconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from . import relay

logger = logging.getLogger(__name__)
T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pid: int | None = None
_running: dict[str, asyncio.Task[Any]] = {}
_shutting_down = threading.Event()

SHUTDOWN_DETAIL = "The reply was cut off because its worker was restarted. Regenerate to try again."


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the process's relay loop and return its result."""
    return start(coro).result()


def start(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Start ``coro`` on the process's relay loop; cancelling the future cancels it."""
    return asyncio.run_coroutine_threadsafe(coro, _relay_loop())


def submit(coro: Coroutine[Any, Any, Any], *, what: str) -> None:
    """Run ``coro`` on the relay loop without waiting for it; a failure is logged."""

    def logged(future: Any) -> None:
        if not future.cancelled() and future.exception() is not None:
            logger.warning("%s failed: %s", what, future.exception())

    asyncio.run_coroutine_threadsafe(coro, _relay_loop()).add_done_callback(logged)


def _relay_loop() -> asyncio.AbstractEventLoop:
    global _loop, _pid
    with _lock:
        if _loop is None or _pid != os.getpid():  # a forked child starts its own
            _loop = _new_loop()
            _pid = os.getpid()
            _running.clear()
            threading.Thread(target=_serve, args=(_loop,), name="relay-loop", daemon=True).start()
        return _loop


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.create_task(_listen_for_cancels())
    loop.run_forever()


async def _listen_for_cancels() -> None:
    while True:
        try:
            pubsub = relay.async_client().pubsub()
            await pubsub.subscribe(relay.CANCEL_CHANNEL)
            async for message in pubsub.listen():
                if message["type"] == "message":
                    task = _running.get(message["data"])
                    if task is not None:
                        task.cancel()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("cancel listener lost its connection; resubscribing")
            await asyncio.sleep(1)


def register(generation_id: str, task: asyncio.Task[Any]) -> None:
    """Let a cancel message for ``generation_id`` cancel ``task``."""
    _running[generation_id] = task

    def gone(_: Any) -> None:
        if _running.get(generation_id) is task:  # not a later run of the same generation
            del _running[generation_id]

    task.add_done_callback(gone)


def running() -> int:
    """How many generations stream on this process's loop now."""
    return len(_running)


def shutting_down() -> bool:
    return _shutting_down.is_set()


def interrupt_all() -> int:
    """End every generation streaming in this process as interrupted (the worker is leaving).

    Each one's task then saves its text and announces its end as usual.
    """
    _shutting_down.set()
    loop = _loop
    if loop is None or _pid != os.getpid():
        return 0
    count = len(_running)

    def cancel() -> None:
        for task in list(_running.values()):
            task.cancel()

    loop.call_soon_threadsafe(cancel)
    return count
