"""Close this process's chat sockets when Redis comes back from a restart, and renew
their leases (each user's open sockets are counted in Redis: accounts/sockets.py).

A restarted Redis has lost the channel layer's subscriptions and any
announcement made while it was away; the token logs are written again by the
workers. Closed with "service restart", every page reconnects, resends what
was not echoed, and resubscribes with its positions, so it catches up from the
logs instead of waiting for an announcement that will never come.

The watch is one daemon thread per process with a blocking client: nothing on
the event loops to cancel when they close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import weakref
from typing import Any

import redis

from inference import relay
from webapp.accounts import sockets as leases

logger = logging.getLogger(__name__)

INTERVAL = 1.0  # seconds between two looks at Redis' run id

_sockets: weakref.WeakKeyDictionary[Any, asyncio.AbstractEventLoop] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_pid: int | None = None


def watch(socket: Any) -> None:
    """Close ``socket`` (with its ``reset``) if Redis restarts while it is open."""
    global _pid
    with _lock:
        _sockets[socket] = asyncio.get_running_loop()
        if _pid != os.getpid():
            _pid = os.getpid()
            threading.Thread(target=_run, name="redis-watchdog", daemon=True).start()


def _run() -> None:
    known, renewed = None, 0.0
    while True:
        run_id = _run_id()
        if run_id is not None:
            if known is not None and run_id != known:
                _reset_all()
            known = run_id
        every = leases.renew_interval()
        if time.monotonic() - renewed >= every:
            renewed = time.monotonic()
            _renew_leases()
        time.sleep(min(INTERVAL, every))


def _reset_all() -> None:
    with _lock:
        sockets = list(_sockets.items())
    logger.warning("Redis restarted: closing %d chat sockets to resync", len(sockets))
    for socket, loop in sockets:
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # its loop closed meanwhile
                asyncio.run_coroutine_threadsafe(socket.reset("Redis restarted"), loop)


def _renew_leases() -> None:
    with _lock:
        open_ = [(s.user.pk, s.channel_name) for s in _sockets if getattr(s, "leased", False)]
    try:
        leases.leases_renew(open_)
    except (redis.RedisError, OSError) as exc:  # tried again next time; a lease outlasts a few
        logger.info("could not renew %d socket leases: %s", len(open_), exc)


def _run_id() -> str | None:
    try:
        info = relay.sync_client().info("server")
    except (redis.RedisError, OSError):
        return None
    return str(info.get("run_id", "")) or None
