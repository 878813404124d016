"""A history that outgrows the model's context is fitted again by the worker with the model's
own tokenizer (TGI's /chat_tokenize), by the same rule as the web app's estimate."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async as sync_to_async

from inference.backends import BackendRejected, Endpoint, Rendered, Timeouts, Token, backend_for
from inference.context import context_fit, counted_fit, cut, cuts, estimated_tokens
from inference.params import params_parse
from tests.factories import (
    ConversationFactory,
    LanguageModelFactory,
    MessageFactory,
    ModelEndpointFactory,
    reply_factory,
)
from tests.inference_server.scripts import count_tokens
from tests.inference_server.tgi import MAX_TOTAL_TOKENS
from tests.test_chat_stream import wait_for_final
from tests.ws import connect
from webapp.chat.models import Message, Role
from webapp.chat.selectors import message_serialize
from webapp.chat.services import message_send
from webapp.generations.models import Status

# The scripted server's tokenizer makes every "." a token: three times the estimate.
DENSE = "." * 600
MAX_NEW_TOKENS = 64


def dense_history(turns: int) -> list[dict]:
    history = [{"role": "system", "content": "Answer briefly."}]
    for turn in range(turns):
        history += [
            {"role": "user", "content": f"question{turn} {DENSE}"},
            {"role": "assistant", "content": f"answer{turn} {DENSE}"},
        ]
    return [*history, {"role": "user", "content": "Which one?"}]


def test_the_cuts_drop_a_turn_with_its_reply_and_keep_the_system_prompt_and_the_question():
    history = dense_history(3)
    assert cuts(history) == [0, 2, 4, 6]
    shortest = cut(history, 6)
    assert [m["role"] for m in shortest] == ["system", "user"]
    assert shortest[-1]["content"] == "Which one?"
    assert cut(history, 2)[1]["content"].startswith("question1")


async def test_counting_with_the_estimate_leaves_out_what_the_estimate_does():
    """The worker's fit and the web app's are one rule: given the same counts, the same cut."""
    history = dense_history(20)
    calls = []

    async def count(kept):
        calls.append(len(kept))
        return sum(map(estimated_tokens, kept)), kept

    for budget in (300, 1_000, 2_500, 5_000, 100_000):
        calls.clear()
        left_out, kept = await counted_fit(history, budget, count)
        assert kept == context_fit(history, budget) == cut(history, left_out), budget
        assert len(calls) <= 7  # 21 cuts, searched by halves: log2(20) + 2 at most


async def test_when_nothing_fits_the_shortest_input_is_sent_for_the_backend_to_refuse():
    history = dense_history(4)

    async def count(kept):
        return 10_000, kept

    left_out, kept = await counted_fit(history, 100, count)
    assert left_out == 8
    assert [m["role"] for m in kept] == ["system", "user"]


async def test_tgi_counts_the_rendered_prompt_and_leaves_out_the_turns_that_do_not_fit(
    inference,
):
    inference.push({"tokens": [" fine"]})
    backend = backend_for(
        Endpoint(kind="tgi", url=inference.url), timeouts=Timeouts(connect=2.0, total=20.0)
    )
    params = params_parse({"max_new_tokens": MAX_NEW_TOKENS}, backend="tgi")
    budget = MAX_TOTAL_TOKENS - MAX_NEW_TOKENS
    history = dense_history(5)
    assert sum(map(estimated_tokens, history)) <= budget  # the estimate sends all of it

    events = [event async for event in backend.stream(history, params, budget=budget)]

    rendered = next(e for e in events if isinstance(e, Rendered))
    assert rendered.left_out == 4  # two turns, each with its reply
    assert "question0" not in rendered.text and "question1" not in rendered.text
    assert "question2" in rendered.text and "Answer briefly." in rendered.text
    assert count_tokens(rendered.text) <= budget
    assert "".join(e.text for e in events if isinstance(e, Token)) == " fine"
    # Found by halves: the whole history, then two candidates, then the one sent.
    assert len(inference.requests(path="/chat_tokenize")) <= 4
    sent = inference.generations()[-1]
    assert sent["status"] == 200


async def test_without_a_budget_tgi_sends_the_history_as_it_is_and_refuses_it(inference):
    backend = backend_for(
        Endpoint(kind="tgi", url=inference.url), timeouts=Timeouts(connect=2.0, total=20.0)
    )
    params = params_parse({"max_new_tokens": MAX_NEW_TOKENS}, backend="tgi")
    with pytest.raises(BackendRejected, match="inputs"):
        _ = [event async for event in backend.stream(dense_history(5), params)]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_a_reply_to_a_dense_history_streams_with_fewer_turns_and_says_how_many(
    worker, inference, user
):
    model = await sync_to_async(LanguageModelFactory)(
        slug="dense-tgi",
        backend="tgi",
        context_length=MAX_TOTAL_TOKENS,
        default_params={"max_new_tokens": MAX_NEW_TOKENS},
    )
    await sync_to_async(ModelEndpointFactory)(model=model, url=inference.url)
    conversation = await sync_to_async(_dense_conversation)(user, model, turns=5)
    inference.push({"tokens": [" The", " third", "."], "rate": 50})

    sent = await sync_to_async(message_send)(
        user=user, conversation_id=conversation.pk, content="Which one?"
    )
    reply = str(sent.assistant_message.generation_id)
    socket = await connect(user)
    await socket.send({"type": "subscribe", "conversation": str(conversation.pk)})
    frames = await socket.receive_until("done", generation=reply)
    await socket.close()
    saved = await wait_for_final(reply)

    assert saved.status == Status.DONE, saved.error_detail
    assert saved.text == " The third."
    assert saved.trimmed_messages == 4
    assert [m["content"].split()[0] for m in saved.messages] == [
        "Answer",
        "question2",
        "answer2",
        "question3",
        "answer3",
        "question4",
        "answer4",
        "Which",
    ]
    assert "question1" not in saved.rendered_prompt and "question2" in saved.rendered_prompt
    assert saved.prompt_tokens == count_tokens(saved.rendered_prompt)
    assert frames[-1]["stats"]["trimmed_messages"] == 4  # the page learns it as the reply ends
    serialized = await sync_to_async(message_serialize)(
        await Message.objects.select_related("generation").aget(pk=sent.assistant_message.pk)
    )
    assert serialized["generation"]["trimmed_messages"] == 4  # and after a reload


def _dense_conversation(user, model, *, turns: int):
    conversation = ConversationFactory(user=user, model=model, system_prompt="Answer briefly.")
    parent = None
    for turn in range(turns):
        asked = MessageFactory(
            conversation=conversation,
            parent=parent,
            role=Role.USER,
            content=f"question{turn} {DENSE}",
        )
        parent = reply_factory(
            conversation=conversation,
            parent=asked,
            status=Status.DONE,
            text=f"answer{turn} {DENSE}",
        )
    conversation.current_leaf = parent
    conversation.save(update_fields=["current_leaf"])
    return conversation


async def test_the_tokens_are_counted_once_when_the_history_fits(inference):
    inference.push({"tokens": [" ok"]})
    backend = backend_for(
        Endpoint(kind="tgi", url=inference.url), timeouts=Timeouts(connect=2.0, total=20.0)
    )
    params = params_parse({"max_new_tokens": MAX_NEW_TOKENS}, backend="tgi")
    events = [e async for e in backend.stream(dense_history(1), params, budget=4_000)]
    assert next(e for e in events if isinstance(e, Rendered)).left_out == 0
    assert len(inference.requests(path="/chat_tokenize")) == 1
