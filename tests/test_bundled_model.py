"""A real reply from the bundled SmolLM2 model, through Celery and Channels, into a socket."""

from __future__ import annotations

import pytest

from tests.test_chat_stream import start_watching
from tests.ws import chunk_text
from webapp.generations.models import Generation, Status

pytestmark = [pytest.mark.model, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def test_the_bundled_model_streams_a_real_reply(worker, user, bundled_model):
    reply, socket = await start_watching(user, bundled_model, "What is the capital of France?")
    frames = await socket.receive_until("done", generation=reply, timeout=90)

    done = frames[-1]
    assert done["status"] == "done", done
    chunks = [f for f in frames if f["type"] == "chunk"]
    assert len(chunks) >= 2  # it streamed
    text = chunk_text(frames)
    assert text.strip()
    assert len(text.split()) >= 3  # words, not a stray token
    saved = await Generation.objects.aget(pk=reply)
    assert saved.status == Status.DONE and saved.text == text
    assert saved.backend_model_id == "smollm2-135m-instruct"
    assert saved.generated_tokens >= len(chunks)  # chunks coalesce tokens
    await socket.close()
