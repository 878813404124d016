"""Refused attempts to use a model are in the audit log, and a change staff make to who may
use a model reaches the pages open on it at once."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async as sync

from tests.factories import (
    ConversationFactory,
    LanguageModelFactory,
    ModelEndpointFactory,
    UserFactory,
    gate_factory,
)
from tests.ws import connect
from webapp.access.models import AuditEntry
from webapp.catalog.services import catalog_load
from webapp.chat.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)


def gated_model():
    gate = gate_factory(slug="llama", name="LLaMA")
    return LanguageModelFactory(
        slug="llama-7b", access_policy="gated", gate=gate, display_name="LLaMA 7B"
    )


def refusals() -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(outcome="refused"))


async def test_a_websocket_send_the_rule_refuses_is_in_the_audit_log_and_changes_nothing():
    conversation = await sync(lambda: ConversationFactory(model=gated_model()))()
    user = await sync(lambda: conversation.user)()
    socket = await connect(user)
    await socket.send({"type": "send", "conversation": str(conversation.pk), "content": "Hi"})
    refused = await socket.receive()
    await socket.close()

    assert refused["code"] == "forbidden"
    [entry] = await sync(refusals)()
    assert (entry.action, entry.gate_slug, entry.target) == ("chat.refused", "llama", "llama-7b")
    assert entry.actor_id == entry.subject_id == user.pk
    assert entry.detail["reason"] == refused["detail"]
    assert not await Message.objects.filter(conversation=conversation).aexists()


def test_starting_a_chat_with_a_model_the_rule_refuses_is_in_the_audit_log(client):
    gated_model()
    user = UserFactory()
    client.force_login(user)
    response = client.post(
        "/c/new", {"model": "llama-7b", "content": "Hello"}, HTTP_USER_AGENT="Firefox/140"
    )

    assert response.status_code == 400
    [entry] = refusals()
    assert (entry.action, entry.target, entry.subject_id) == ("chat.refused", "llama-7b", user.pk)
    assert entry.user_agent == "Firefox/140" and entry.ip == "127.0.0.1"
    assert entry.detail["reason"] == "LLaMA is gated: request access on its page."
    assert not Conversation.objects.exists()


def test_a_model_nobody_named_is_not_an_attempt_on_anything(client):
    client.force_login(UserFactory())
    assert client.post("/c/new", {"model": "no-such-model", "content": "Hi"}).status_code == 400
    assert refusals() == []


def admin_change(client, endpoint, **changes) -> None:
    model = endpoint.model
    form = {
        "slug": model.slug,
        "display_name": model.display_name,
        "backend": model.backend,
        "default_params": '{"max_new_tokens": 32}',
        "context_length": 4096,
        "access_policy": model.access_policy,
        "is_active": "on",
        "position": 0,
        "endpoints-TOTAL_FORMS": 1,
        "endpoints-INITIAL_FORMS": 1,
        "endpoints-0-id": endpoint.pk,
        "endpoints-0-model": model.pk,
        "endpoints-0-url": endpoint.url,
        "endpoints-0-api_key": "",
        "endpoints-0-is_active": "on",
        **changes,
    }
    form = {key: value for key, value in form.items() if value is not None}
    response = client.post(f"/admin/catalog/languagemodel/{model.pk}/change/", form)
    assert response.status_code == 302, response.content[:2000]


async def test_staff_closing_a_model_in_the_admin_tells_open_pages_and_reopening_it_too(client):
    endpoint = await sync(ModelEndpointFactory)()
    conversation = await sync(lambda: ConversationFactory(model=endpoint.model))()
    other = await sync(ConversationFactory)()  # another model: its page hears nothing
    user = await sync(lambda: conversation.user)()
    staff = await sync(lambda: UserFactory(is_staff=True, is_superuser=True))()
    await sync(client.force_login)(staff)
    socket = await connect(user)
    await socket.send({"type": "subscribe", "conversation": str(conversation.pk)})
    watcher = await connect(await sync(lambda: other.user)())
    await watcher.send({"type": "subscribe", "conversation": str(other.pk)})
    assert await socket.is_quiet(0.3)

    await sync(admin_change)(client, endpoint, access_policy="private")
    closed = await socket.receive()
    name = endpoint.model.display_name
    assert closed == {
        "type": "access",
        "conversation": str(conversation.pk),
        "detail": f"{name} is open to named groups only.",
    }

    await sync(admin_change)(client, endpoint, access_policy="registered")
    opened = await socket.receive()
    assert opened == {
        "type": "access",
        "conversation": str(conversation.pk),
        "detail": None,
        "allowed": True,
    }
    await sync(admin_change)(client, endpoint, display_name="Renamed")  # not about access
    assert await socket.is_quiet(0.3)
    assert await watcher.is_quiet(0.1)
    await socket.close()
    await watcher.close()


async def test_a_model_taken_out_of_service_by_load_models_tells_open_pages():
    model = await sync(LanguageModelFactory)(slug="vicuna", access_policy="registered")
    conversation = await sync(lambda: ConversationFactory(model=model))()
    socket = await connect(await sync(lambda: conversation.user)())
    await socket.send({"type": "subscribe", "conversation": str(conversation.pk)})
    assert await socket.is_quiet(0.3)

    spec = {"slug": "vicuna", "backend": "openai", "is_active": False}
    spec["endpoints"] = ["http://127.0.0.1:9/v1"]
    await sync(catalog_load)(models=[spec])
    frame = await socket.receive()
    assert frame == {
        "type": "access",
        "conversation": str(conversation.pk),
        "detail": "This model is not available.",
    }
    await socket.send({"type": "send", "conversation": str(conversation.pk), "content": "Hi"})
    assert (await socket.receive())["code"] == "forbidden"
    await socket.close()
