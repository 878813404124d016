"""Frames a fuzzer makes up, of every type and shape: the server never fails, answers
each bad one with an error frame, and the socket stays usable."""

from __future__ import annotations

import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.testing.websocket import WebsocketCommunicator
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import ConversationFactory, MessageFactory, UserFactory, reply_factory
from webapp.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

TYPES = ["subscribe", "send", "edit", "regenerate", "stop", "select", "dance", ""]
FIELDS = [
    "conversation",
    "generation",
    "generations",
    "latest",
    "after_seq",
    "content",
    "client_id",
    "parent",
    "message",
    "same_settings",
    "leaf",
]


def frames(known_ids: list[str]) -> st.SearchStrategy[str]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=40),
        st.sampled_from(known_ids),
        st.uuids().map(str),
    )
    values = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=8,
    )
    positions = st.dictionaries(
        st.one_of(st.sampled_from(known_ids), st.text(max_size=8)), values, max_size=3
    )
    structured = st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(TYPES), values)},
        optional={**dict.fromkeys(FIELDS, values), "generations": positions},
    ).map(lambda frame: json.dumps(frame, allow_nan=True))
    return st.one_of(structured, structured, st.text(min_size=1, max_size=60))


@pytest.fixture
def world(unqueued, openai_model):  # nothing streams
    user = UserFactory()
    conversation = ConversationFactory(user=user, model=openai_model)
    question = MessageFactory(conversation=conversation, role="user", content="Hello")
    reply = reply_factory(conversation=conversation, parent=question, status="done", text="Hi")
    client = Client()
    client.force_login(user)
    ids = [
        str(conversation.pk),
        str(question.pk),
        str(reply.pk),
        str(reply.generation_id),
        str(uuid.uuid4()),
    ]
    return f"sessionid={client.cookies['sessionid'].value}", ids


async def exchange(cookie: str, sent: list[str]) -> list[dict]:
    headers = [
        (b"origin", b"http://localhost"),
        (b"host", b"localhost"),
        (b"cookie", cookie.encode()),
    ]
    socket = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    connected, _ = await socket.connect(timeout=5)
    assert connected
    answers = []
    for text in [*sent, json.dumps({"type": "dance"})]:
        await socket.send_to(text_data=text)
        while not await socket.receive_nothing(timeout=0.05):
            output = await socket.receive_output()
            assert output["type"] == "websocket.send", (text, output)  # never closed
            answers.append(json.loads(output["text"]))
    await socket.disconnect()
    return answers


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_made_up_frames_get_answers_and_never_break_the_socket(world, data):
    cookie, ids = world
    sent = data.draw(st.lists(frames(ids), min_size=1, max_size=12))
    answers = async_to_sync(exchange)(cookie, sent)
    # The last probe is answered: the socket is still usable after all of it.
    assert answers and answers[-1]["type"] == "error" and answers[-1]["code"] == "unknown_type"
    for answer in answers:
        if answer["type"] == "error":
            assert answer["code"] and answer["detail"]
