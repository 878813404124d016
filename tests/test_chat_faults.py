"""When the inference server fails, the user sees why at once, the reply keeps its partial
text, and nothing stays "typing" forever."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from inference.tasks import reap_generations
from tests.factories import LanguageModelFactory, ModelEndpointFactory
from tests.test_chat_stream import start, start_watching, wait_for_final
from tests.ws import chunk_text, connect
from webapp.chat.models import Message
from webapp.core.errors import ValidationFailed
from webapp.generations.models import Generation, Status

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    ("script", "code"),
    [
        # A 429 goes back to the queue: it fails once the test settings' three attempts are spent.
        ([{"status": 429}] * 3, "backend_overloaded"),
        ([{"status": 503}], "backend_unavailable"),
        ([{"hang": True}], "backend_timeout"),
        ([{"delay": 5}], "backend_timeout"),
    ],
    ids=["overloaded-429-every-time", "unavailable-503", "hangs-after-headers", "slow-headers"],
)
async def test_backend_fault_ends_the_reply_as_failed_with_a_reason(
    worker, inference, user, backend_model, script, code
):
    inference.push(*script)
    reply, socket = await start_watching(user, backend_model)
    frames = await socket.receive_until("done", generation=reply)

    done = frames[-1]
    assert done["status"] == "failed"
    assert done["error"]["code"] == code
    assert "try again" in done["error"]["detail"].lower()
    saved = await Generation.objects.aget(pk=reply)
    assert (saved.status, saved.error_code) == (Status.FAILED, code)
    await socket.close()


async def test_rejected_parameters_show_the_servers_reason(worker, inference, user, backend_model):
    inference.push({"status": 422})
    reply, socket = await start_watching(user, backend_model)
    done = (await socket.receive_until("done", generation=reply))[-1]
    assert done["status"] == "failed"
    assert done["error"]["code"] == "backend_rejected"
    assert "rejected" in done["error"]["detail"]
    await socket.close()


async def test_failure_mid_stream_keeps_the_partial_text(worker, inference, user, backend_model):
    inference.push({"tokens": ["One", " two", " three", " four"], "fail_after": 3, "rate": 50})
    reply, socket = await start_watching(user, backend_model)
    frames = await socket.receive_until("done", generation=reply)

    assert chunk_text(frames) == "One two three"
    assert frames[-1]["error"]["code"] == "backend_failed"
    saved = await Generation.objects.aget(pk=reply)
    assert (saved.status, saved.text) == (Status.FAILED, "One two three")
    await socket.close()


async def test_unreachable_server_fails_within_two_seconds(worker, inference, user):
    model = await database_sync_to_async(LanguageModelFactory)(slug="down", backend="openai")
    await database_sync_to_async(ModelEndpointFactory)(model=model, url="http://127.0.0.1:9/")
    conversation, reply = await start(user, model)
    socket = await connect(user)
    began = time.monotonic()
    await socket.send({"type": "subscribe", "conversation": conversation})
    done = (await socket.receive_until("done", generation=reply, timeout=2.0))[-1]
    assert time.monotonic() - began < 2.0
    assert done["error"]["code"] == "backend_unavailable"
    await socket.close()


async def test_a_failed_reply_can_be_regenerated(worker, inference, user, openai_model):
    inference.push({"status": 503}, {"tokens": ["Better", " now"]})
    reply, socket = await start_watching(user, openai_model)
    await socket.receive_until("done", generation=reply)

    first = await Message.objects.aget(generation_id=reply)
    await socket.send({"type": "regenerate", "message": str(first.pk)})
    frames = await socket.receive_until("done", status="done")
    new_reply = next(f["message"] for f in frames if f["type"] == "message")
    assert new_reply["role"] == "assistant" and new_reply["generation"]["id"] != reply
    assert chunk_text(frames) == "Better now"
    second = await Message.objects.aget(pk=new_reply["id"])
    assert first.parent_id == second.parent_id  # a sibling branch, not a new turn
    await socket.close()


async def until(condition, timeout: float = 8.0, interval: float = 0.1):
    """Poll the blocking ``condition`` until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := await database_sync_to_async(condition)():
            return result
        await asyncio.sleep(interval)
    raise AssertionError(f"{condition.__name__} stayed false for {timeout} s")


async def test_worker_killed_mid_stream_is_reaped_as_interrupted_with_its_text(
    worker, inference, user, openai_model
):
    inference.push({"n_tokens": 400, "rate": 20})
    reply, socket = await start_watching(user, openai_model)
    streamed = await socket.receive_chunks(3)
    worker.kill()

    assert await until(reap_generations) == 1  # once the heartbeat lapses (2 s in tests)
    frames = await socket.receive_until("done", generation=reply)
    assert frames[-1]["status"] == "interrupted"
    saved = await wait_for_final(reply)
    assert saved.status == Status.INTERRUPTED
    assert saved.text.startswith(chunk_text(streamed))
    assert saved.text == chunk_text(streamed + frames)
    await socket.close()


async def test_reaper_leaves_live_generations_alone(
    worker, inference, user, openai_model, settings
):
    inference.push({"n_tokens": 80, "rate": 20})
    reply, socket = await start_watching(user, openai_model)
    await socket.receive_chunks(1)
    ttl = timedelta(seconds=settings.GENERATION["HEARTBEAT_TTL"])

    def older_than_the_heartbeat_ttl() -> bool:
        started = Generation.objects.values_list("started_at", flat=True).get(pk=reply)
        return started < timezone.now() - ttl

    await until(older_than_the_heartbeat_ttl)  # without its beat, the reaper would take it now
    assert await database_sync_to_async(reap_generations)() == 0
    await socket.send({"type": "stop", "generation": reply})
    done = (await socket.receive_until("done", generation=reply))[-1]
    assert done["status"] == "stopped"
    await socket.close()


async def test_a_model_without_a_server_fails_the_reply_with_the_reason(worker, user):
    model = await database_sync_to_async(LanguageModelFactory)(
        slug="broken-no-endpoint", backend="openai", default_params={"max_new_tokens": 8}
    )
    reply, socket = await start_watching(user, model)
    done = (await socket.receive_until("done", generation=reply))[-1]
    assert (done["status"], done["error"]["code"]) == ("failed", "no_endpoint")
    saved = await Generation.objects.aget(pk=reply)
    assert (saved.status, saved.error_code) == (Status.FAILED, "no_endpoint")
    await socket.close()


async def test_a_model_with_invalid_defaults_refuses_the_send_and_saves_nothing(user):
    model = await database_sync_to_async(LanguageModelFactory)(
        slug="broken-defaults", backend="openai", default_params={"top_p": 7}
    )
    with pytest.raises(ValidationFailed) as refused:
        await start(user, model)
    assert refused.value.code == "invalid_params"
    assert "misconfigured" in refused.value.detail and "top_p" in refused.value.detail
    assert not await Generation.objects.filter(language_model=model).aexists()
    assert not await Message.objects.filter(conversation__model=model).aexists()
