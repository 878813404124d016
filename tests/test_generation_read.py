"""How a worker reads one generation's stream (inference/generation.py): tokens cut into
chunks, and a server that goes quiet, against the scripted server over HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from inference import relay, runtime
from inference.backends import Endpoint
from inference.generation import Generation, Job, Limits
from inference.params import params_parse


def limits(*, first_token: float = 5, idle: float = 5) -> Limits:
    # first token, idle, connect, total, heartbeat, flush interval, flush tokens
    return Limits(first_token, idle, 5, 30, 5, 0.1, 16)


def job(inference: Any) -> Job:
    return Job(
        generation_id=str(uuid.uuid4()),
        group="generation-read.test",
        endpoint=Endpoint(kind="openai", url=f"{inference.url}/v1", api_key="", model="m"),
        messages=[{"role": "user", "content": "Hi"}],
        params=params_parse({}, backend="openai"),
    )


async def test_a_steady_streams_chunks_leave_with_a_token_not_between_two(inference):
    # A token every 60 ms with a 100 ms flush interval: the interval ends 40 ms after the
    # second token of each chunk and 20 ms before the next one, which then goes with it.
    inference.push({"n_tokens": 10, "rate": 1 / 0.06})
    reading = job(inference)
    outcome = await Generation(reading, limits()).run()
    assert outcome.status == "done" and outcome.token_count == 10
    log = await relay.log_read(reading.generation_id)
    chunks = [e["text"] for e in log if e["type"] == "chunk"]
    assert "".join(chunks) == outcome.text
    sizes = [chunk.count(" tok") for chunk in chunks]
    # The first token at once, then two tokens a chunk; the last token ends the stream.
    assert sizes == [1, 2, 2, 2, 2, 1], chunks


async def test_a_server_that_goes_quiet_mid_stream_times_out_and_keeps_the_text(inference):
    inference.push({"n_tokens": 10, "hang_after": 3, "rate": 100})
    began = time.monotonic()
    outcome = await Generation(job(inference), limits(idle=0.4)).run()
    assert (outcome.status, outcome.error_code) == ("failed", "backend_timeout")
    assert outcome.text == " tok0 tok1 tok2"
    assert time.monotonic() - began < 3  # the idle limit, not the first-token one


async def test_a_stop_while_tokens_flow_is_a_stop_not_a_timeout(inference):
    inference.push({"n_tokens": 200, "rate": 50})
    reading = job(inference)
    generation = Generation(reading, limits(idle=0.3))
    running = asyncio.create_task(generation.run())
    while generation.outcome.token_count < 3:
        await asyncio.sleep(0.01)
    runtime._running[reading.generation_id].cancel()  # as a stop does
    outcome = await running
    assert (outcome.status, outcome.error_code) == ("stopped", "")
    assert 3 <= outcome.token_count < 200
