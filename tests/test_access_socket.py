"""A change of access reaches open chat sockets at once: they close with 4403, the page
reconnects, is told why it may not send, and the next send is refused."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async as sync

from tests.factories import ConversationFactory, GrantFactory, LanguageModelFactory, gate_factory
from tests.test_sessions import closed_with
from tests.ws import connect
from webapp.accounts import revocation
from webapp.chat.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


def gated_conversation():
    gate = gate_factory(slug="llama", name="LLaMA")
    model = LanguageModelFactory(access_policy="gated", gate=gate, display_name="LLaMA 7B")
    grant = GrantFactory(gate=gate)
    return grant, ConversationFactory(user=grant.user, model=model)


def revoke(grant, reason: str) -> None:
    from webapp.access.services.grants import grant_revoke
    from webapp.accounts.models import User

    grant_revoke(
        reviewer=User.objects.create(email="r@example.org", is_staff=True),
        grant_id=grant.pk,
        reason=reason,
    )


def publish(grant) -> None:
    from webapp.access.services.grants import licence_publish

    licence_publish(gate=grant.gate, title="Research licence", text="Version two.")


@pytest.mark.parametrize(
    ("change", "told"),
    [
        (lambda grant: revoke(grant, "Misuse."), "Your access to LLaMA was revoked: Misuse."),
        (publish, "The licence of LLaMA has changed: accept the new version"),
    ],
    ids=["revocation", "new licence"],
)
async def test_an_open_socket_on_a_gated_model_is_closed_and_its_next_send_refused(change, told):
    grant, conversation = await sync(gated_conversation)()
    user = await sync(lambda: grant.user)()
    subscribe = {"type": "subscribe", "conversation": str(conversation.pk)}
    socket = await connect(user)
    await socket.send(subscribe)
    assert await socket.is_quiet(0.3)  # allowed: no access frame

    await sync(change)(grant)
    assert await closed_with(socket.communicator, timeout=2) == revocation.CLOSE_ACCESS_CHANGED

    again = await connect(user)  # the page reconnects
    await again.send(subscribe)
    frame = await again.receive()
    assert frame["type"] == "access" and frame["conversation"] == str(conversation.pk)
    assert frame["detail"].startswith(told)
    await again.send({"type": "send", "conversation": str(conversation.pk), "content": "Still?"})
    refused = await again.receive()
    assert refused["code"] == "forbidden" and refused["detail"].startswith(told)
    assert not await Message.objects.filter(conversation=conversation).aexists()
    await again.close()
