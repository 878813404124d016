"""At most GENERATION_LIMITS["SOCKETS"] chat sockets per user, counted across web processes:
one more is told why and closed with 4429 while the others stay usable, and the sockets of
a web process that died stop counting once their lease runs out."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets
from channels.db import database_sync_to_async as sync
from django.contrib.auth.models import Group

from tests.factories import UserFactory
from tests.faults import session_cookie
from tests.services import asgi_server, free_port
from tests.services import test_database_env as database_env
from tests.ws import Socket, connect, open_socket
from webapp.accounts import sockets

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def at_most(settings):
    def set_limit(count: int, **limits):
        settings.GENERATION_LIMITS = {**settings.GENERATION_LIMITS, "SOCKETS": count, **limits}

    return set_limit


async def refused(socket: Socket) -> dict:
    """The error frame a socket over the limit gets before it is closed with 4429."""
    frame = await socket.receive()
    output = await socket.communicator.receive_output(timeout=2)
    assert output == {"type": "websocket.close", "code": sockets.CLOSE_TOO_MANY_SOCKETS}
    return frame


async def usable(socket: Socket) -> bool:
    await socket.send({"type": "dance"})
    return (await socket.receive_until("error"))[-1]["code"] == "unknown_type"


async def test_one_socket_too_many_is_told_why_and_closed_while_the_others_stay_usable(at_most):
    at_most(3)
    user = await sync(UserFactory)()
    open_ = [await connect(user) for _ in range(3)]

    accepted, extra = await open_socket(user)
    assert accepted  # accepted first, so the page can read the reason and the code
    frame = await refused(extra)
    assert frame["type"] == "error" and frame["code"] == "too_many_sockets"
    assert "3 chat tabs or windows open" in frame["detail"] and "Close one" in frame["detail"]
    assert all([await usable(socket) for socket in open_])
    assert await sync(sockets.sockets_open)(user.pk) == 3

    someone_else = await connect(await sync(UserFactory)())  # a limit per user
    assert await usable(someone_else)

    await open_[0].close()  # a tab closes: its place is free
    again = await connect(user)
    assert await again.is_quiet(0.2) and await usable(again)
    for socket in [*open_[1:], again, someone_else]:
        await socket.close()


async def test_a_group_raises_the_socket_limit(at_most):
    at_most(1, GROUPS={"lab": {"SOCKETS": 3}})
    user = await sync(UserFactory)()
    group = await Group.objects.acreate(name="lab")
    await sync(user.groups.add)(group)
    open_ = [await connect(user) for _ in range(3)]
    assert all([await usable(socket) for socket in open_])
    _, extra = await open_socket(user)
    assert (await refused(extra))["code"] == "too_many_sockets"
    for socket in open_:
        await socket.close()


async def test_sockets_of_a_web_process_that_died_stop_counting_when_their_lease_ends(
    at_most, settings
):
    """The other process renews its sockets while it lives, so they keep counting past a
    lease; killed, it renews nothing, and after one lease its sockets no longer count."""
    lease = 3.0
    at_most(2)
    user = await sync(UserFactory)()
    cookie = await sync(session_cookie)(user)
    port = free_port()
    env = {**database_env(), "GENERATION_LIMIT_SOCKETS": "2", "CHAT_SOCKET_LEASE": str(lease)}
    other = await asyncio.to_thread(asgi_server(port, env=env, name="sockets-web").start)
    url, headers = f"ws://127.0.0.1:{port}/ws/chat/", {"Cookie": cookie}
    origin = f"http://127.0.0.1:{port}"
    try:
        there = [
            await websockets.connect(
                url, additional_headers=headers, origin=origin, ping_interval=None
            )
            for _ in range(2)
        ]
        await asyncio.sleep(lease + 1)  # longer than a lease: renewed, they still count
        _, here = await open_socket(user)
        assert (await refused(here))["code"] == "too_many_sockets"
        for ws in there:
            await ws.send(json.dumps({"type": "dance"}))
            assert json.loads(await ws.recv())["code"] == "unknown_type"
    finally:
        await asyncio.to_thread(other.kill)  # as a crash would: no socket is closed cleanly
    _, here = await open_socket(user)
    assert (await refused(here))["code"] == "too_many_sockets"  # within their last lease

    deadline = time.monotonic() + lease + 2
    while await sync(sockets.sockets_open)(user.pk) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    fresh = await connect(user)
    assert await fresh.is_quiet(0.2) and await usable(fresh)
    await fresh.close()
