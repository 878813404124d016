"""A generation is its own record: several stream in one conversation, one streams with no
conversation at all, and creating or claiming one costs a handful of queries."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.factories import (
    ConversationFactory,
    LanguageModelFactory,
    MessageFactory,
    UserFactory,
    reply_factory,
)
from tests.test_chat_stream import start, wait_for_final
from tests.ws import chunk_text, connect, seqs
from webapp.chat.models import Message, Role
from webapp.chat.services import message_regenerate, message_send
from webapp.core.errors import PermissionDenied
from webapp.generations.models import Generation, Origin, Status
from webapp.generations.services import generation_claim, generation_create

TOKENS = [f" a{i}" for i in range(30)]
OTHER = [f" b{i}" for i in range(30)]


def frames_of(frames, generation_id):
    return [f for f in frames if f.get("generation") == generation_id]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_two_generations_stream_in_one_conversation_each_resumed_exactly_once(
    worker, inference, user, openai_model
):
    inference.push({"tokens": TOKENS, "rate": 25}, {"tokens": OTHER, "rate": 25})
    conversation, first = await start(user, openai_model)
    reply = await Message.objects.aget(generation_id=first)
    second = str(
        (await sync_to_async(message_regenerate)(user=user, message_id=reply.pk)).generation_id
    )

    socket = await connect(user)
    await socket.send({"type": "subscribe", "conversation": conversation})
    seen = await socket.receive_chunks(8)
    assert {f["generation"] for f in seen} == {first, second}  # both at once, one socket
    await socket.close()
    got = {g: frames_of(seen, g) for g in (first, second)}
    positions = {g: (seqs(got[g]) or [0])[-1] for g in got}

    # The first is resumed on its own, by id; the second with the conversation.
    by_id = await connect(user)
    await by_id.send({"type": "subscribe", "generation": first, "after_seq": positions[first]})
    got[first] += await by_id.receive_until("done", generation=first)
    whole = await connect(user)
    await whole.send(
        {
            "type": "subscribe",
            "conversation": conversation,
            "generations": {second: positions[second]},
            "latest": second,
        }
    )
    got[second] += frames_of(await whole.receive_until("done", generation=second), second)

    texts = set()
    for generation_id in (first, second):
        frames = frames_of(got[generation_id], generation_id)
        assert seqs(frames) == list(range(1, len(seqs(frames)) + 1)), generation_id
        texts.add(chunk_text(frames))
    # Which script each got depends on which request reached the server first.
    assert texts == {"".join(TOKENS), "".join(OTHER)}
    await by_id.close()
    await whole.close()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_a_generation_without_a_conversation_streams_to_its_owner_only(
    worker, inference, user, openai_model
):
    inference.push({"tokens": TOKENS[:6], "rate": 50})

    def create() -> str:
        with transaction.atomic():
            generation = generation_create(
                user=user,
                model=openai_model,
                origin=Origin.API,
                messages=[{"role": "user", "content": "No conversation here"}],
            )
        return str(generation.pk)

    generation_id = await sync_to_async(create)()
    stranger = await connect(await sync_to_async(UserFactory)())
    await stranger.send({"type": "subscribe", "generation": generation_id})
    assert (await stranger.receive())["code"] == "not_found"

    owner = await connect(user)
    await owner.send({"type": "subscribe", "generation": generation_id, "after_seq": 0})
    frames = await owner.receive_until("done", generation=generation_id)
    assert chunk_text(frames) == "".join(TOKENS[:6])
    assert frames[-1]["status"] == "done"
    saved = await wait_for_final(generation_id)
    assert (saved.origin, saved.text) == ("api", "".join(TOKENS[:6]))
    assert await stranger.is_quiet()
    await owner.close()
    await stranger.close()


@pytest.fixture
def conversation(db, user, openai_model):
    conversation = ConversationFactory(user=user, model=openai_model)
    question = MessageFactory(conversation=conversation, content="First question")
    reply_factory(conversation=conversation, parent=question, text="First answer")
    return conversation


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


@contextmanager
def at_most_queries(limit: int):
    """Fail unless the block runs at most ``limit`` SQL statements besides transaction control."""
    with CaptureQueriesContext(connection) as captured:
        yield
    statements = [q["sql"] for q in captured.captured_queries]
    work = [sql for sql in statements if not sql.startswith(TRANSACTION_CONTROL)]
    assert len(work) <= limit, "\n\n".join(work)


@pytest.mark.django_db(transaction=True)
def test_a_send_runs_at_most_two_queries(user, conversation, unqueued):
    with at_most_queries(2):  # the conversation, then its place in the queue and the writes
        sent = message_send(user=user, conversation_id=conversation.pk, content="Second question")
    generation = sent.assistant_message.generation
    assert [m["content"] for m in generation.messages] == [
        "First question",
        "First answer",
        "Second question",
    ]
    assert generation.channel_group == conversation.group


@pytest.mark.django_db(transaction=True)
def test_a_send_to_a_model_with_a_free_slot_starts_it_in_the_same_two_queries(
    user, conversation, monkeypatch
):
    from inference.tasks import generate

    sent_tasks = []
    monkeypatch.setattr(
        generate, "apply_async", lambda *sent, **options: sent_tasks.append((*sent, options))
    )
    with at_most_queries(2):
        sent = message_send(user=user, conversation_id=conversation.pk, content="Now")
    generation = Generation.objects.get(pk=sent.assistant_message.generation_id)
    assert generation.admitted_at is not None
    assert generation.endpoint == conversation.model.endpoints.get()
    [((task_id, start), options)] = sent_tasks
    assert task_id == str(generation.pk)
    assert "Now" not in options["argsrepr"]  # the task's header names the generation only
    # What the worker needs to send the request while it claims: the saved generation's.
    assert start["endpoint"] == str(generation.endpoint_id)
    assert (start["messages"], start["params"]) == (generation.messages, generation.params)


@pytest.mark.django_db(transaction=True)
def test_a_regenerate_runs_at_most_four_queries(user, conversation, unqueued):
    reply = conversation.messages.get(role=Role.ASSISTANT)
    with at_most_queries(4):
        message_regenerate(user=user, message_id=reply.pk)


@pytest.mark.django_db(transaction=True)
def test_a_claim_runs_one_query_and_a_second_claim_gets_nothing(
    user, conversation, inference, admit
):
    sent = message_send(user=user, conversation_id=conversation.pk, content="Go")
    generation_id = str(sent.assistant_message.generation_id)
    assert admit(conversation.model) == [generation_id]
    with at_most_queries(1):  # the claim and the endpoints in one statement on PostgreSQL
        job = generation_claim(generation_id=generation_id)
    assert job.endpoint.url == inference.url
    assert [m["content"] for m in job.messages][-1] == "Go"
    assert generation_claim(generation_id=generation_id) is None
    assert Generation.objects.get(pk=generation_id).status == Status.STREAMING


@pytest.mark.django_db
def test_regenerate_with_the_same_settings_reuses_the_parameters_and_input(user, conversation):
    reply = conversation.messages.get(role=Role.ASSISTANT)
    old = reply.generation
    Generation.objects.filter(pk=old.pk).update(params={"max_new_tokens": 9, "seed": 42})
    model = conversation.model
    model.default_params = {"max_new_tokens": 100, "temperature": 1.0}
    model.save()

    same = message_regenerate(user=user, message_id=reply.pk, same_settings=True).generation
    fresh = message_regenerate(user=user, message_id=reply.pk).generation
    assert (same.params, same.messages) == ({"max_new_tokens": 9, "seed": 42}, old.messages)
    assert fresh.params == {"max_new_tokens": 100, "temperature": 1.0}


@pytest.mark.django_db
def test_the_details_of_a_reply_are_shown_to_its_owner_only(client, user, conversation):
    reply = conversation.messages.get(role=Role.ASSISTANT)
    Generation.objects.filter(pk=reply.generation_id).update(
        params={"max_new_tokens": 64, "seed": 7},
        backend_revision="abc123",
        endpoint_url="http://tgi:8080",
        rendered_prompt="<|user|>First question<|assistant|>",
    )
    url = f"/generations/{reply.generation_id}/"
    client.force_login(user)
    details = client.get(url).json()
    assert details["params"] == {"max_new_tokens": 64, "seed": 7}
    assert details["backend_revision"] == "abc123"
    assert details["endpoint"] == "http://tgi:8080"
    assert details["input"]["rendered_prompt"].startswith("<|user|>")
    assert details["input"]["messages"] == [{"role": "user", "content": "Hello"}]

    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302


@pytest.mark.django_db
def test_every_origin_is_refused_a_model_the_user_may_not_use(user):
    model = LanguageModelFactory(access_policy="private")
    for origin in Origin.values:
        with pytest.raises(PermissionDenied):
            generation_create(
                user=user, model=model, origin=origin, messages=[{"role": "user", "content": "x"}]
            )
    assert not Generation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_long_conversation_does_not_load_every_replys_frozen_history(
    user, conversation, unqueued
):
    for turn in range(5):
        message_send(user=user, conversation_id=conversation.pk, content=f"Question {turn}")
        Generation.objects.filter(status=Status.QUEUED).update(status=Status.DONE, text="Fine")
    with CaptureQueriesContext(connection) as captured:
        message_send(user=user, conversation_id=conversation.pk, content="And the last one")
    select = next(q["sql"] for q in captured.captured_queries if "SELECT" in q["sql"])
    generations = 'LEFT JOIN "generations_generation" g '
    assert generations in select  # the replies' generations, as "g"
    assert '"g"."messages"' not in select
    assert '"g"."text"' in select


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["user deactivated", "model made private", "model retired"])
def test_the_claim_checks_access_again_and_refuses_what_was_lost_meanwhile(
    user, conversation, admit, change
):
    from webapp.generations.services import GenerationRefused

    sent = message_send(user=user, conversation_id=conversation.pk, content="Go")
    admit(conversation.model)
    if change == "user deactivated":
        type(user).objects.filter(pk=user.pk).update(is_active=False)
    elif change == "model made private":
        type(conversation.model).objects.filter(pk=conversation.model.pk).update(
            access_policy="private"
        )
    else:
        type(conversation.model).objects.filter(pk=conversation.model.pk).update(is_active=False)
    with pytest.raises(GenerationRefused) as refused:
        generation_claim(generation_id=str(sent.assistant_message.generation_id))
    assert refused.value.code == "forbidden"


def test_a_long_history_is_trimmed_oldest_turns_first_keeping_the_system_prompt():
    from inference.context import context_fit, estimated_tokens

    history = [{"role": "system", "content": "Be brief."}]
    for turn in range(10):
        history += [
            {"role": "user", "content": f"question {turn} " + "x" * 300},
            {"role": "assistant", "content": f"answer {turn} " + "y" * 300},
        ]
    history.append({"role": "user", "content": "the last question"})
    kept = context_fit(history, 500)
    assert kept[0] == history[0]  # the system prompt stays
    assert kept[-1] == history[-1]  # and the message being answered
    assert kept[1]["role"] == "user"  # the history starts with a turn, not a reply
    assert sum(map(estimated_tokens, kept)) <= 500
    assert [m["content"] for m in kept[1:]] == [m["content"] for m in history[-len(kept) + 1 :]]
    assert context_fit(history, 100_000) == history


@pytest.mark.django_db(transaction=True)
def test_a_trimmed_history_is_saved_and_shown_with_the_reply(user, unqueued):
    from webapp.chat.selectors import message_serialize

    model = LanguageModelFactory(
        slug="small", backend="openai", context_length=300, default_params={"max_new_tokens": 50}
    )
    conversation = ConversationFactory(user=user, model=model)
    for turn in range(4):
        sent = message_send(user=user, conversation_id=conversation.pk, content="z" * 200)
        Generation.objects.filter(pk=sent.assistant_message.generation_id).update(
            status=Status.DONE, text="w" * 200
        )
    sent = message_send(user=user, conversation_id=conversation.pk, content="now")
    generation = Generation.objects.get(pk=sent.assistant_message.generation_id)
    assert generation.trimmed_messages > 0
    assert generation.messages[-1]["content"] == "now"
    assert len(generation.messages) + generation.trimmed_messages == 9
    frame = message_serialize(sent.assistant_message)
    assert frame["generation"]["trimmed_messages"] == generation.trimmed_messages
