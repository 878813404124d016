"""How many chat sockets each user has open, counted across every web process.

One sorted set per user in Redis: a member per open socket (its channel name), scored
by when its lease ends. A socket is let in by a script that drops lapsed leases, counts
the rest and adds the newcomer only below the user's limit, in one step, so two sockets
opening at once on two processes cannot both take the last place. Each web process
renews the leases of its open sockets (the watchdog thread, every third of
CHAT_SOCKET_LEASE); the sockets of a process that died stop counting when their lease
ends. A socket over the limit is accepted, told why in an ``error`` frame, and closed
with ``CLOSE_TOO_MANY_SOCKETS``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from typing import Any

import redis
from django.conf import settings

from inference import relay

CLOSE_TOO_MANY_SOCKETS = 4429
RETRY_SECONDS = 30  # how often a refused page tries again (static/js/socket.js)

# KEYS[1]: the user's set; ARGV: now, lease end, channel name, limit, key TTL.
# Returns how many were open before; the socket is in when that is below the limit.
_ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local open = redis.call('ZCARD', KEYS[1])
if open < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
return open
"""


def _key(user_id: Any) -> str:
    return f"gatehouse:user:{user_id}:sockets"


def _lease() -> float:
    return float(settings.CHAT_SOCKET_LEASE)


def renew_interval() -> float:
    return _lease() / 3


async def socket_admit(consumer: Any, *, limit: int) -> bool:
    """Count ``consumer``'s socket in for its user, or refuse it past ``limit``.

    Refused: an ``error`` frame that says why, then the close code; the socket honours
    nothing more. Call after ``accept``.
    """
    now, lease = time.time(), _lease()
    admit = relay.async_client().register_script(_ADMIT)
    args = [now, now + lease, consumer.channel_name, limit, int(lease) + 1]
    open_before = int(await admit(keys=[_key(consumer.user.pk)], args=args))
    if open_before < limit:
        consumer.leased = True
        return True
    consumer.revoked = True
    tabs = "tab or window" if open_before == 1 else "tabs or windows"
    detail = (
        f"You have {open_before} chat {tabs} open, the most at once for your account. "
        f"Close one: this tab connects again by itself within {RETRY_SECONDS} s."
    )
    frame = {"type": "error", "code": "too_many_sockets", "detail": detail}
    await consumer.send(text_data=json.dumps(frame))
    await consumer.close(code=CLOSE_TOO_MANY_SOCKETS)
    return False


async def socket_release(consumer: Any) -> None:
    """The socket closed: it no longer counts (if Redis is away, its lease runs out)."""
    if getattr(consumer, "leased", False):
        consumer.leased = False
        with contextlib.suppress(redis.RedisError, OSError):
            await relay.async_client().zrem(_key(consumer.user.pk), consumer.channel_name)


def leases_renew(sockets: Iterable[tuple[Any, str]]) -> None:
    """Extend the leases of these open sockets, (user id, channel name) pairs, in one round
    trip. Only sockets still counted are renewed: a released one is not brought back."""
    now, lease = time.time(), _lease()
    pipe = relay.sync_client().pipeline(transaction=False)
    users = set()
    for user_id, channel_name in sockets:
        pipe.zadd(_key(user_id), {channel_name: now + lease}, xx=True)
        users.add(user_id)
    for user_id in users:
        pipe.expire(_key(user_id), int(lease) + 1)
    if users:
        pipe.execute()


def sockets_open(user_id: Any) -> int:
    """How many chat sockets the user has open now, on every web process."""
    return int(relay.sync_client().zcount(_key(user_id), time.time(), "+inf"))
