"""A reply's whole path: websocket → service → Celery worker → scripted server → relay → sockets."""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.db import database_sync_to_async as sync_to_async

from tests.ws import chunk_text, connect, seqs
from webapp.chat.services import conversation_start
from webapp.generations.models import Generation, Status

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TOKENS = ["Hello", ",", " world", "!", " How", " can", " I", " help", "?"]


async def start(user, model, content="Hi there"):
    """Start a conversation; return its id and its reply's generation id."""
    sent = await sync_to_async(conversation_start)(user=user, model=model, content=content)
    return str(sent.user_message.conversation_id), str(sent.assistant_message.generation_id)


async def start_watching(user, model, content="Hi there"):
    """Start a conversation; return its reply's generation id and a socket subscribed to it."""
    conversation, reply = await start(user, model, content)
    socket = await connect(user)
    await socket.send({"type": "subscribe", "conversation": conversation})
    return reply, socket


async def test_reply_streams_token_by_token_and_is_saved(worker, inference, user, backend_model):
    model = backend_model
    inference.push({"tokens": TOKENS, "rate": 100})
    reply, socket = await start_watching(user, model)
    frames = await socket.receive_until("done", generation=reply)

    assert chunk_text(frames) == "".join(TOKENS)
    assert seqs(frames) == list(range(1, len(seqs(frames)) + 1))
    assert len([f for f in frames if f["type"] == "chunk"]) > 1  # streamed, not one block
    done = frames[-1]
    assert done["status"] == "done"
    saved = await Generation.objects.aget(pk=reply)
    assert saved.status == Status.DONE
    assert saved.text == "".join(TOKENS)
    assert saved.generated_tokens >= len(TOKENS)  # TGI counts its end-of-sequence token
    assert saved.time_to_first_token_ms is not None and saved.tokens_per_second
    assert saved.backend_model_id.startswith("scripted/")
    assert saved.params == {"max_new_tokens": 64, "temperature": 0.7}
    assert saved.endpoint_url == inference.url
    if model.backend == "tgi":  # the revision, and the prompt TGI's chat template rendered
        assert saved.backend_revision == "0000"
        assert "Hi there" in saved.rendered_prompt
    assert done["stats"]["generated_tokens"] == saved.generated_tokens
    await socket.close()


async def test_second_message_sent_over_the_socket_gets_a_reply_with_history(
    worker, inference, user, openai_model
):
    inference.push({"tokens": ["First", " answer"]}, {"tokens": ["Second", " answer"]})
    conversation, first = await start(user, openai_model, "Question one")
    socket = await connect(user)
    await socket.send({"type": "subscribe", "conversation": conversation})
    await socket.receive_until("done", generation=first)

    await socket.send(
        {
            "type": "send",
            "conversation": conversation,
            "content": "Question two",
            "client_id": "8b0b9d8e-6a0e-4d43-9c55-0b9a1b8f2f01",
        }
    )
    frames = await socket.receive_until("done")
    messages = [f["message"] for f in frames if f["type"] == "message"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert chunk_text(frames) == "Second answer"
    chat_request = inference.requests(path="/v1/chat/completions")[-1]["body"]
    assert [m["content"] for m in chat_request["messages"]] == [
        "Question one",
        "First answer",
        "Question two",
    ]
    await socket.close()


async def test_reconnect_with_after_seq_receives_exactly_the_missing_chunks(
    worker, inference, user, openai_model
):
    tokens = [f" t{i}" for i in range(40)]
    inference.push({"tokens": tokens, "rate": 40})
    conversation, reply = await start(user, openai_model)
    first = await connect(user)
    await first.send({"type": "subscribe", "conversation": conversation})
    before = await first.receive_chunks(4)
    await first.close()  # the tab reloads or the network drops

    second = await connect(user)
    last_seq = before[-1]["seq"]
    await second.send(
        {"type": "subscribe", "conversation": conversation, "generations": {reply: last_seq}}
    )
    after = await second.receive_until("done", generation=reply)

    assert seqs(before) + seqs(after) == list(range(1, seqs(after)[-1] + 1))
    assert chunk_text(before) + chunk_text(after) == "".join(tokens)
    await second.close()


async def test_two_tabs_on_one_conversation_both_see_the_stream(
    worker, inference, user, openai_model
):
    inference.push({"tokens": TOKENS, "rate": 60})
    conversation, reply = await start(user, openai_model)
    sockets = [await connect(user) for _ in range(2)]
    for socket in sockets:
        await socket.send({"type": "subscribe", "conversation": conversation})
    for socket in sockets:
        frames = await socket.receive_until("done", generation=reply)
        assert chunk_text(frames) == "".join(TOKENS)
        await socket.close()


async def test_closing_the_tab_does_not_stop_the_generation(worker, inference, user, openai_model):
    tokens = [f" w{i}" for i in range(20)]
    inference.push({"tokens": tokens, "rate": 50})
    reply, socket = await start_watching(user, openai_model)
    await socket.receive_chunks(1)
    await socket.close()

    await inference_wait_complete(inference)
    saved = await wait_for_final(reply)
    assert saved.status == Status.DONE
    assert saved.text == "".join(tokens)


async def test_stop_ends_the_reply_and_closes_the_upstream_request(
    worker, inference, user, openai_model
):
    inference.push({"n_tokens": 2000, "rate": 20})
    reply, socket = await start_watching(user, openai_model)
    streamed = await socket.receive_chunks(2)
    await socket.send({"type": "stop", "generation": reply})
    frames = await socket.receive_until("done", generation=reply, timeout=1.5)

    assert frames[-1]["status"] == "stopped"
    disconnected = await sync_to_async(inference.wait_for_disconnect)(timeout=3)
    assert disconnected, "the inference server never saw its client go away"
    saved = await wait_for_final(reply)
    assert saved.status == Status.STOPPED
    assert saved.text.startswith(chunk_text(streamed))
    assert saved.text == chunk_text(streamed + frames)
    await socket.close()


async def inference_wait_complete(inference, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        requests = await sync_to_async(inference.requests)(path="/v1/chat/completions")
        if requests and requests[-1].get("completed"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the generation did not complete")


async def wait_for_final(generation_id: str, timeout: float = 5.0) -> Generation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        generation = await Generation.objects.aget(pk=generation_id)
        if not generation.is_active:
            return generation
        await asyncio.sleep(0.05)
    raise AssertionError(f"generation {generation_id} is still {generation.status}")
