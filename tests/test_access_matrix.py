"""One rule, everywhere: every policy, every kind of user and every entry point of the chat
(model list, model page, chat page, websocket send) is let in or refused with the same
sentence; so are the download entry points (signed link, token download, Hub API), for
the gate whose weights they serve."""

from __future__ import annotations

import html

import pytest
from channels.db import database_sync_to_async as sync

from tests.access_kinds import (
    GATE,
    KINDS,
    POLICIES,
    REVOKE_REASON,
    expected_refusal,
    refusal_matches,
    user_build,
    world_build,
)
from tests.factories import ConversationFactory
from tests.test_downloads import signed_path
from tests.test_sessions import closed_with
from tests.weights import storages_for, write_file
from tests.ws import open_socket
from webapp.accounts import revocation
from webapp.accounts.tokens.services import token_create
from webapp.chat.models import Message
from webapp.weights.services import weight_file_attach

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


# Downloads: weight files belong to a gate, so the matrix runs over the kinds of user and
# the download entry points of the gated model's gate.
DOWNLOAD_ENTRY_POINTS = ["download link", "token download", "Hub API"]
DOWNLOADERS = {"granted weights", "staff"}


def expected_download_refusal(kind: str) -> str | None:
    """What each kind is told about the weights of the gated model's gate."""
    if kind in DOWNLOADERS:
        return None
    return {
        "anonymous": f"Sign in, then request access to {GATE}.",
        "registered": f"{GATE} is gated: request access on its page.",
        "group member": f"{GATE} is gated: request access on its page.",
        "pending": f"Your request for access to {GATE} is waiting for review.",
        "granted chat only": (
            f"Your access to {GATE} does not include weights; ask for it on the gate's page."
        ),
        "expired": f"Your access to {GATE} expired on ",
        "revoked": f"Your access to {GATE} was revoked: {REVOKE_REASON}",
        "licence outdated": (
            f"The licence of {GATE} has changed: accept the new version on the gate's page "
            "to go on."
        ),
    }[kind]


@pytest.fixture
def weights_world(tmp_path, settings):
    settings.STORAGES = storages_for(tmp_path)
    world = world_build()
    write_file(tmp_path, "w.bin", b"weights")
    world.file = weight_file_attach(gate=world.gate, name="w.bin", storage_path="w.bin")
    return world


def _call(client, entry: str, user, world):
    token = {}
    if user.is_authenticated:
        secret = token_create(user=user, name="matrix", scopes=["downloads"])[1]
        token = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    if entry == "download link":
        return client.get(signed_path(user, world.file))
    if entry == "token download":
        return client.get(f"/weights/{world.gate.slug}/files/w.bin", **token)
    return client.get(f"/api/models/{world.gate.slug}", **token)


# A link is made for a signed-in user: anonymous people have none (a link used by
# someone else, signed in or not, is tested in test_downloads.py).
DOWNLOAD_CASES = [
    (kind, entry)
    for kind in KINDS
    for entry in DOWNLOAD_ENTRY_POINTS
    if (kind, entry) != ("anonymous", "download link")
]


@pytest.mark.django_db
@pytest.mark.filterwarnings("ignore::Warning")  # the test client reads a streamed file
@pytest.mark.parametrize(("kind", "entry"), DOWNLOAD_CASES)
def test_each_kind_of_user_at_each_download_entry_point(client, weights_world, kind, entry):
    world = weights_world
    user = user_build(kind, world)
    response = _call(client, entry, user, world)
    reason = expected_download_refusal(kind)
    if reason is None:
        assert response.status_code == 200, response.content
        return
    assert response.status_code == (401 if kind == "anonymous" else 403)
    if entry == "Hub API":
        assert response["X-Error-Code"] == "GatedRepo"
        told = response.json()["error"]
    else:
        told = response.content.decode()
    assert reason in told, told
