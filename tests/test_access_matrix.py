"""One rule, everywhere: every policy, every kind of user and every entry point of the chat
(model list, model page, chat page, websocket send) is let in or refused with the same
sentence."""

from __future__ import annotations

import html

import pytest
from channels.db import database_sync_to_async as sync

from tests.access_kinds import (
    KINDS,
    POLICIES,
    expected_refusal,
    refusal_matches,
    user_build,
    world_build,
)
from tests.factories import ConversationFactory
from tests.test_sessions import closed_with
from tests.ws import open_socket
from webapp.accounts import revocation
from webapp.chat.models import Message

cases = pytest.mark.parametrize("kind", KINDS)
policies = pytest.mark.parametrize("policy", POLICIES)


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def signed_in(client, user):
    if user.is_authenticated:
        client.force_login(user)
    return client


@pytest.mark.django_db
@cases
@policies
def test_the_model_list_shows_exactly_the_models_the_rule_opens(client, policy, kind):
    world = world_build()
    user = user_build(kind, world)
    response = signed_in(client, user).get("/")
    if kind == "anonymous":
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        return
    listed = f'data-slug="{policy}-model"' in response.content.decode()
    assert listed is (expected_refusal(policy, kind) is None)


@pytest.mark.django_db
@cases
@policies
def test_the_model_page_opens_or_says_why_not(client, policy, kind):
    world = world_build()
    user = user_build(kind, world)
    response = signed_in(client, user).get(f"/models/{policy}-model/")
    expected = expected_refusal(policy, kind, action="view")
    if expected is None:
        assert response.status_code == 200
        chat = expected_refusal(policy, kind)
        if chat is not None:  # the card is readable, chatting is not (anonymous on public)
            assert 'id="start-form"' not in response.content.decode()
    elif policy == "private":
        assert response.status_code == 404  # not advertised to outsiders
    elif kind == "anonymous":
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    else:
        assert response.status_code == 403
        text = page_text(response)
        refusal = text.split('id="access-refusal" role="alert">')[1].split("</p>")[0]
        assert refusal_matches(refusal, expected), refusal
        assert 'href="/gates/research-gate/"' in text


@pytest.mark.django_db
@cases
@policies
def test_the_chat_page_lets_one_send_or_says_why_not(client, policy, kind):
    world = world_build()
    user = user_build(kind, world)
    owner = user if user.is_authenticated else None
    conversation = ConversationFactory(
        model=world.models[policy], **({"user": owner} if owner else {})
    )
    response = signed_in(client, user).get(conversation.get_absolute_url())
    if kind == "anonymous":
        assert response.status_code == 302
        return
    assert response.status_code == 200
    expected = expected_refusal(policy, kind)
    text = page_text(response)
    assert (f'data-refused="{"false" if expected is None else "true"}"') in text
    if expected is not None:
        notice = text.split('id="notice-text">')[1].split("</span>")[0]
        assert refusal_matches(notice, expected), notice


@pytest.fixture
def unqueued(monkeypatch):
    from inference.tasks import generate

    monkeypatch.setattr(generate, "delay_on_commit", lambda *args: None)


@pytest.mark.django_db(transaction=True)
@cases
@policies
async def test_a_websocket_send_is_let_in_or_refused_with_the_reason(unqueued, policy, kind):
    world = await sync(world_build)()
    user = await sync(user_build)(kind, world)
    connected, socket = await open_socket(user if user.is_authenticated else None)
    assert connected
    if kind == "anonymous":
        assert await closed_with(socket.communicator) == revocation.CLOSE_SIGNED_OUT
        return
    conversation = await sync(ConversationFactory)(user=user, model=world.models[policy])
    await socket.send({"type": "send", "conversation": str(conversation.pk), "content": "Hi"})
    frame = await socket.receive()
    expected = expected_refusal(policy, kind)
    if expected is None:
        assert frame["type"] == "message" and frame["message"]["role"] == "user"
        assert await Message.objects.filter(conversation=conversation).acount() == 2
    else:
        assert frame["type"] == "error" and frame["code"] == "forbidden"
        assert refusal_matches(frame["detail"], expected), frame
        assert not await Message.objects.filter(conversation=conversation).aexists()
    await socket.close()
