"""An open socket ends with its session and with the access it was opened with: logout,
deactivation, a new password and lost staff rights close it at once, and nothing it
sends afterwards is honoured."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async as sync
from channels.testing.websocket import WebsocketCommunicator
from django.contrib.auth.models import Group
from django.test import Client

from tests.factories import ConversationFactory, UserFactory
from webapp.accounts import revocation
from webapp.accounts.models import User
from webapp.asgi import application
from webapp.chat.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


async def open_with(cookie: str) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    communicator = WebsocketCommunicator(
        application, "/ws/chat/", headers=[*headers, (b"cookie", cookie.encode())]
    )
    await communicator.connect(timeout=5)
    return communicator


async def open_as(client: Client) -> WebsocketCommunicator:
    communicator = await open_with(f"sessionid={client.cookies['sessionid'].value}")
    assert await communicator.receive_nothing(timeout=0.05)  # open, not closed at once
    return communicator


async def signed_in(user: User) -> tuple[Client, WebsocketCommunicator]:
    client = Client()
    await sync(client.force_login)(user)
    return client, await open_as(client)


async def closed_with(communicator: WebsocketCommunicator, timeout: float = 1.0) -> int:
    """Wait for the server to close the socket; return its close code."""
    while True:
        output = await communicator.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return output["code"]


def reloaded(user: User) -> User:
    return User.objects.get(pk=user.pk)


async def test_logout_closes_that_sessions_socket_and_not_the_others(openai_model):
    user = await sync(UserFactory)()
    client, socket = await signed_in(user)
    _, other = await signed_in(user)  # another browser

    await sync(client.logout)()
    assert await closed_with(socket) == revocation.CLOSE_SIGNED_OUT
    assert await other.receive_nothing(timeout=0.3)
    await other.disconnect()


def change_deactivate(user: User) -> None:
    user.is_active = False
    user.save()


def change_password(user: User) -> None:
    user.set_password("a whole new password")
    user.save()


def change_demote(user: User) -> None:
    user.is_staff = False
    user.save()


def change_group(user: User) -> None:
    user.groups.add(Group.objects.create(name="researchers"))


@pytest.mark.parametrize(
    "change",
    [change_deactivate, change_password, change_demote, change_group],
    ids=["deactivation", "password change", "demotion", "new group"],
)
async def test_a_change_of_access_closes_every_socket_of_the_user(openai_model, change):
    user = await sync(UserFactory)(is_staff=True)
    bystander = await sync(UserFactory)()
    _, first = await signed_in(user)
    _, second = await signed_in(user)
    _, theirs = await signed_in(bystander)

    await sync(lambda: change(reloaded(user)))()
    assert await closed_with(first) == revocation.CLOSE_ACCESS_CHANGED
    assert await closed_with(second) == revocation.CLOSE_ACCESS_CHANGED
    assert await theirs.receive_nothing(timeout=0.3)
    await theirs.disconnect()


async def test_a_send_after_a_lost_announcement_is_still_refused(openai_model):
    user = await sync(UserFactory)()
    conversation = await sync(ConversationFactory)(user=user, model=openai_model)
    _, socket = await signed_in(user)
    # The access changes but the close never reaches this process (a lost message).
    await asyncio.to_thread(
        lambda: revocation.relay.sync_client().incr(f"gatehouse:user:{user.pk}:epoch")
    )

    await socket.send_json_to(
        {"type": "send", "conversation": str(conversation.pk), "content": "still here?"}
    )
    refused = await socket.receive_json_from(timeout=2)
    assert refused["type"] == "error" and refused["code"] == "access_changed"
    assert await closed_with(socket) == revocation.CLOSE_ACCESS_CHANGED
    assert not await Message.objects.filter(
        conversation=conversation, content="still here?"
    ).aexists()


async def test_a_signed_out_session_cannot_open_a_socket_again(openai_model):
    user = await sync(UserFactory)()
    client, socket = await signed_in(user)
    cookie = client.cookies["sessionid"].value
    await sync(client.logout)()
    await closed_with(socket)
    replay = await open_with(f"sessionid={cookie}")
    assert await closed_with(replay) == revocation.CLOSE_SIGNED_OUT
