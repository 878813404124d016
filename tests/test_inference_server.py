"""Tests for the scripted inference server, driven through the real client libraries."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import aclosing

import httpx
import openai
import pytest
import text_generation
from text_generation import errors as tgi_errors

from tests.inference_server import ScriptedServer, directive


@pytest.fixture(scope="module")
def server():
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(server):
    server.reset()
    yield


def tgi_client(server, **kw):
    return text_generation.AsyncClient(server.url, **kw)


def openai_client(server, **kw):
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0, **kw)


def chat(text="Hi"):
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


async def collect_tgi(client, prompt="Hi", **kw):
    events = []
    async for event in client.generate_stream(prompt, **kw):
        events.append(event)
    return events


# -- TGI -----------------------------------------------------------------------


async def test_tgi_stream_parses_with_text_generation_client(server):
    server.push({"tokens": ["Hello", ",", " world"], "rate": 0})
    events = await collect_tgi(tgi_client(server), max_new_tokens=50)

    content = [e.token.text for e in events if not e.token.special]
    assert content == ["Hello", ",", " world"]
    assert [e.generated_text for e in events[:-1]] == [None] * 3
    last = events[-1]
    assert last.token.special and last.token.text == "<|im_end|>"
    assert last.generated_text == "Hello, world"
    assert last.details.finish_reason == text_generation.types.FinishReason.EndOfSequenceToken
    assert last.details.generated_tokens == 4
    rec = server.generations()[-1]
    assert rec["path"] == "/" and rec["stream"] and rec["completed"] and not rec["disconnected"]
    assert rec["tokens_sent"] == 3 and rec["script_source"] == "queue"


async def test_tgi_stream_wire_format_and_length_limit(server):
    body = {"inputs": "Hi", "parameters": {"max_new_tokens": 4, "details": True}, "stream": True}
    server.push({"n_tokens": 10, "rate": 0})
    resp = httpx.post(f"{server.url}/generate_stream", json=body)
    assert resp.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in resp.text.split("\n\n") if f]
    assert all(f.startswith('data:{"index":') for f in frames)
    events = [json.loads(f[len("data:") :]) for f in frames]
    assert [e["index"] for e in events] == [1, 2, 3, 4]
    assert events[0]["token"] == {"id": events[0]["token"]["id"], "text": " tok0",
                                  "logprob": -0.1, "special": False}  # fmt: skip
    assert events[0]["generated_text"] is None and events[0]["top_tokens"] is None
    assert events[-1]["generated_text"] == " tok0 tok1 tok2 tok3"
    assert events[-1]["details"]["finish_reason"] == "length"
    assert events[-1]["details"]["generated_tokens"] == 4


async def test_tgi_generate_non_streaming(server):
    client = tgi_client(server)
    response = await client.generate("Hi " + directive(tokens=["a", "b"], rate=0))
    assert response.generated_text == "ab"
    assert response.details.finish_reason.value == "eos_token"
    assert [t.text for t in response.details.tokens] == ["a", "b", "<|im_end|>"]

    plain = httpx.post(f"{server.url}/generate", json={"inputs": "Hi " + directive(n_tokens=2)})
    assert plain.json() == {"generated_text": " tok0 tok1"}


async def test_tgi_info_health_and_chat_tokenize(server):
    assert httpx.get(f"{server.url}/health").status_code == 200
    info = httpx.get(f"{server.url}/info").json()
    assert info["model_id"] == "scripted/tgi-model"
    assert info["max_total_tokens"] == 4096 and info["max_input_tokens"] == 4095
    resp = httpx.post(
        f"{server.url}/chat_tokenize", json={"model": "tgi", "messages": chat("Hello there")}
    ).json()
    assert resp["templated_text"] == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"
    )
    assert "".join(t["text"] for t in resp["tokenize_response"]) == resp["templated_text"]


@pytest.mark.parametrize(
    ("parameters", "needle"),
    [
        ({"temperature": 0}, "temperature"),
        ({"top_p": 1.0}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
    ],
)
async def test_tgi_validation_is_422(server, parameters, needle):
    resp = httpx.post(
        f"{server.url}/generate_stream", json={"inputs": "Hi", "parameters": parameters}
    )
    assert resp.status_code == 422
    body = resp.json()
    assert body["error_type"] == "validation" and needle in body["error"]


async def test_tgi_error_statuses_map_to_client_exceptions(server):
    client = tgi_client(server)
    server.push({"status": 429}, {"status": 422}, {"status": 503}, {"status": 500})
    with pytest.raises(tgi_errors.OverloadedError):
        await collect_tgi(client)
    with pytest.raises(tgi_errors.ValidationError):
        await collect_tgi(client)
    with pytest.raises(tgi_errors.UnknownError):
        await collect_tgi(client)
    with pytest.raises(tgi_errors.GenerationError):
        await client.generate("Hi")
    # Without a TGI error_type a 429 is read as the hosted API's rate limit.
    server.push({"status": 429, "error_type": "rate_limited"})
    with pytest.raises(tgi_errors.RateLimitExceededError):
        await collect_tgi(client)


async def test_tgi_mid_stream_failure(server):
    server.push({"n_tokens": 10, "fail_after": 2, "rate": 0})
    seen = []
    with pytest.raises(tgi_errors.GenerationError, match="after 2 tokens"):
        async for event in tgi_client(server).generate_stream("Hi"):
            seen.append(event.token.text)
    assert seen == [" tok0", " tok1"]
    rec = server.generations()[-1]
    assert rec["outcome"] == "failed" and rec["tokens_sent"] == 2 and not rec["completed"]


async def test_tgi_client_timeout_on_hang_is_seen_as_disconnect(server):
    server.push({"hang": True})
    with pytest.raises(TimeoutError):
        await collect_tgi(tgi_client(server, timeout=0.5))
    rec = server.wait_for_disconnect(timeout=5)
    assert rec["disconnected"] and rec["tokens_sent"] == 0 and rec["status"] == 200


# -- OpenAI --------------------------------------------------------------------


async def test_openai_stream_parses_with_sdk_including_usage(server):
    server.push({"tokens": ["Hi", " there", "!"], "rate": 0})
    stream = await openai_client(server).chat.completions.create(
        model="gpt-x",
        messages=chat(),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hi there!"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 3
    assert chunks[-1].usage.total_tokens == chunks[-1].usage.prompt_tokens + 3
    assert chunks[0].model == "gpt-x" and chunks[0].object == "chat.completion.chunk"
    rec = server.generations()[-1]
    assert rec["protocol"] == "openai" and rec["completed"] and rec["tokens_sent"] == 3


async def test_openai_non_streaming_and_length(server):
    client = openai_client(server)
    completion = await client.chat.completions.create(
        model="m", messages=chat("go " + directive(n_tokens=9)), max_tokens=4
    )
    assert completion.choices[0].message.content == " tok0 tok1 tok2 tok3"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 4
    models = await client.models.list()
    assert [m.id for m in models.data] == ["scripted/openai-model"]


async def test_openai_errors_map_to_sdk_exceptions(server):
    client = openai_client(server)
    server.push({"status": 429}, {"status": 422}, {"status": 500})
    with pytest.raises(openai.RateLimitError) as rate_limited:
        await client.chat.completions.create(model="m", messages=chat(), stream=True)
    assert rate_limited.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.UnprocessableEntityError):
        await client.chat.completions.create(model="m", messages=chat(), stream=True)
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="m", messages=chat())
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model="m", messages=chat(), temperature=2.5)
    assert bad.value.param == "temperature"
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="m", messages=chat(), top_p=1.5)
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="m", messages=chat(), max_tokens=0)


async def test_openai_mid_stream_failure(server):
    server.push({"n_tokens": 10, "fail_after": 2, "rate": 0})
    stream = await openai_client(server).chat.completions.create(
        model="m", messages=chat(), stream=True
    )
    seen = []
    with pytest.raises(openai.APIError) as failed:
        async for chunk in stream:
            seen.append(chunk.choices[0].delta.content)
    assert not isinstance(failed.value, openai.APIStatusError)
    assert seen == ["", " tok0", " tok1"]
    assert server.generations()[-1]["outcome"] == "failed"


async def test_openai_stream_closed_by_client_is_recorded(server):
    server.push({"n_tokens": 200, "rate": 100})
    stream = await openai_client(server).chat.completions.create(
        model="m", messages=chat(), stream=True
    )
    received = 0
    async for _ in stream:
        received += 1
        if received == 4:
            break
    await stream.close()
    rec = server.wait_for_disconnect(timeout=5)
    assert rec["disconnected"] and not rec["completed"]
    assert 3 <= rec["tokens_sent"] < 200


# -- disconnects, pacing, script selection ---------------------------------------


async def test_client_disconnect_mid_stream_is_recorded(server):
    server.push({"n_tokens": 500, "rate": 100})
    async with httpx.AsyncClient(base_url=server.url) as client:
        body = {"inputs": "Hi", "parameters": {"max_new_tokens": 1000}}
        async with client.stream("POST", "/generate_stream", json=body) as resp:
            lines = 0
            async for line in resp.aiter_lines():
                lines += bool(line)
                if lines == 3:
                    break
    rec = server.wait_for_disconnect(timeout=5)
    assert rec["disconnected"] and not rec["completed"] and rec["outcome"] == "disconnected"
    assert 3 <= rec["tokens_sent"] < 100
    sent = rec["tokens_sent"]
    time.sleep(0.1)
    assert server.generations()[-1]["tokens_sent"] == sent  # generation stopped


@pytest.mark.parametrize("script", [{"hang": True}, {"n_tokens": 5, "hang_after": 2, "rate": 0}])
async def test_disconnect_while_hanging_is_recorded(server, script):
    server.push(script)
    async with httpx.AsyncClient(base_url=server.url) as client:
        body = {"model": "m", "messages": chat(), "stream": True}
        async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
            assert resp.status_code == 200
            hanging = server.wait_for_hang(timeout=5)[-1]
            assert hanging["tokens_sent"] == script.get("hang_after", 0)
    rec = server.wait_for_disconnect(timeout=5)
    assert rec["id"] == hanging["id"] and rec["disconnected"]


async def test_disconnect_during_delay_before_headers(server):
    server.push({"delay": 30})
    async with aclosing(tgi_client(server, timeout=0.3).generate_stream("Hi")) as events:
        with pytest.raises(TimeoutError):
            async for _ in events:
                pass
    rec = server.wait_for_disconnect(timeout=5)
    assert rec["status"] is None and rec["tokens_sent"] == 0


async def test_rate_is_roughly_honoured(server):
    server.push({"n_tokens": 20, "rate": 50}, {"n_tokens": 20, "rate": 0})
    client = tgi_client(server)
    started = time.monotonic()
    paced = await collect_tgi(client, max_new_tokens=20)
    paced_elapsed = time.monotonic() - started
    started = time.monotonic()
    await collect_tgi(client, max_new_tokens=20)
    fast_elapsed = time.monotonic() - started
    assert len(paced) == 20
    assert paced_elapsed > 0.3
    assert fast_elapsed < paced_elapsed


async def test_delays(server):
    server.push({"n_tokens": 2, "delay": 0.2, "first_token_delay": 0.2, "rate": 0})
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=server.url) as client:
        body = {"model": "m", "messages": chat(), "stream": True}
        async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
            headers_at = time.monotonic() - started
            first = None
            async for line in resp.aiter_lines():
                if line.startswith("data:"):
                    first = time.monotonic() - started
                    break
    assert 0.15 < headers_at < first and first > 0.35


async def test_script_selection_order(server):
    server.set_default({"tokens": ["default"], "rate": 0})
    server.push({"tokens": ["queued"], "rate": 0})
    client = openai_client(server)

    async def reply(text):
        completion = await client.chat.completions.create(model="m", messages=chat(text))
        return completion.choices[0].message.content

    # Only the last user message counts for directives.
    history = [
        {"role": "user", "content": directive(tokens=["old"])},
        {"role": "assistant", "content": "old"},
        {"role": "user", "content": "again " + directive(tokens=["directive"], rate=0)},
    ]
    completion = await client.chat.completions.create(model="m", messages=history)
    assert completion.choices[0].message.content == "directive"
    assert await reply("plain") == "queued"
    assert await reply("plain") == "default"
    assert [r["script_source"] for r in server.generations()] == ["directive", "queue", "default"]

    server.reset()
    assert server.requests() == []
    assert await reply("plain") == (
        "Hello from the scripted server. This reply is deterministic and streams token by token."
    )


async def test_tgi_directive_uses_last_user_turn_of_chatml(server):
    prompt = (
        f"<|im_start|>user\n{directive(tokens=['old'])}<|im_end|>\n"
        "<|im_start|>assistant\nold<|im_end|>\n"
        "<|im_start|>user\nplain<|im_end|>\n<|im_start|>assistant\n"
    )
    server.push({"tokens": ["queued"], "rate": 0})
    response = await tgi_client(server).generate(prompt)
    assert response.generated_text == "queued"


async def test_stop_sequences(server):
    server.push({"tokens": ["a", "b", "STOP", "c"], "rate": 0}, {"tokens": ["a", "STOP", "c"]})
    response = await tgi_client(server).generate("Hi", stop_sequences=["STOP"])
    assert response.generated_text == "abSTOP"
    assert response.details.finish_reason.value == "stop_sequence"
    completion = await openai_client(server).chat.completions.create(
        model="m", messages=chat(), stop="STOP"
    )
    assert completion.choices[0].message.content == "a"
    assert completion.choices[0].finish_reason == "stop"


async def test_control_api_rejects_bad_scripts_and_wait_times_out(server):
    with pytest.raises(RuntimeError, match="unknown script field"):
        server.push({"n_tokenz": 3})
    resp = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "m", "messages": chat("[[script:{not json}]]")},
    )
    assert resp.status_code == 400 and "invalid script directive" in resp.text
    with pytest.raises(TimeoutError):
        server.wait_for_disconnect(timeout=0.2)


async def test_many_concurrent_streams(server):
    server.set_default({"n_tokens": 20, "rate": 100})
    client = openai_client(server)

    async def one():
        stream = await client.chat.completions.create(model="m", messages=chat(), stream=True)
        return sum([1 async for c in stream if c.choices and c.choices[0].delta.content])

    counts = await asyncio.gather(*(one() for _ in range(50)))
    assert counts == [20] * 50
    assert all(r["completed"] for r in server.generations())


async def test_cancelling_the_consumer_task_disconnects(server):
    server.push({"n_tokens": 500, "rate": 100})

    async def consume():
        async for _ in tgi_client(server).generate_stream("Hi", max_new_tokens=1000):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    rec = server.wait_for_disconnect(timeout=5)
    assert 0 < rec["tokens_sent"] < 500


def test_max_concurrent_requests_answers_429():
    with ScriptedServer(max_concurrent_requests=1) as limited:
        limited.push({"hang": True})
        with httpx.Client(base_url=limited.url) as client:
            body = {"inputs": "Hi", "stream": True}
            with client.stream("POST", "/", json=body) as first:
                assert first.status_code == 200
                limited.wait_for_hang(timeout=5)
                second = httpx.post(f"{limited.url}/generate", json={"inputs": "Hi"})
                assert second.status_code == 429
                assert second.json()["error_type"] == "overloaded"
        limited.wait_for_disconnect(timeout=5)
        assert httpx.get(f"{limited.url}/info").json()["max_concurrent_requests"] == 1
