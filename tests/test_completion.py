"""A raw prompt is a generation too: continued as it is (no chat template) through TGI's
/generate_stream and an OpenAI-compatible /v1/completions, with each token's logprob and
alternatives when asked for, saved and streamed like any reply."""

from __future__ import annotations

import math

import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.db import transaction

from inference.backends import BackendError, Endpoint, Timeouts, Token, backend_for
from inference.params import SamplingParams, params_parse
from tests.services import free_port
from tests.test_backend_errors import FAULTS
from tests.test_chat_stream import wait_for_final
from tests.ws import chunk_text, connect, seqs
from webapp.core.errors import ValidationFailed
from webapp.generations.models import Generation, Origin, Status
from webapp.generations.services import generation_create

TOKENS = [" over", " the", " lazy", " dog", "."]
LOGPROBS = [-0.05, -0.7, -2.3, -0.2, -1.1]
PROMPT = "The quick brown fox jumps"
COMPLETION_PATHS = {"tgi": "/generate_stream", "openai": "/v1/completions"}
# Token details asked for in each backend's own terms: two alternatives per token.
DETAILS = {"tgi": {"details": True, "top_n_tokens": 2}, "openai": {"logprobs": 2}}


async def completion_events(backend: str, url: str, params: dict) -> list:
    client = backend_for(Endpoint(kind=backend, url=url), timeouts=Timeouts(5, 30))
    parsed = params_parse(params, backend=backend, completion=True)
    return [event async for event in client.complete(PROMPT, parsed)]


@pytest.mark.parametrize("backend", ["tgi", "openai"])
async def test_the_backend_continues_a_raw_prompt_with_token_details(scripted_server, backend):
    scripted_server.reset()
    scripted_server.push({"tokens": TOKENS, "logprobs": LOGPROBS, "rate": 0})
    events = await completion_events(
        backend, scripted_server.url, {"max_new_tokens": 20, **DETAILS[backend]}
    )

    tokens = [e for e in events if isinstance(e, Token)]
    assert [t.text for t in tokens] == TOKENS
    assert [t.logprob for t in tokens] == LOGPROBS
    for token in tokens:  # the chosen token and its alternatives, most likely first
        assert [a.logprob for a in token.top] == sorted(
            (a.logprob for a in token.top), reverse=True
        )
        assert token.text in [a.text for a in token.top]
        assert len(token.top) >= 2
    assert events[-1].reason in ("eos_token", "stop")
    request = scripted_server.requests(path=COMPLETION_PATHS[backend])[-1]["body"]
    if backend == "tgi":
        assert request["inputs"] == PROMPT  # as typed: no chat template around it
        assert request["parameters"]["top_n_tokens"] == 2
    else:
        assert request["prompt"] == PROMPT and request["logprobs"] == 2
    assert not scripted_server.requests(path="/chat_tokenize")


@pytest.mark.parametrize("backend", ["tgi", "openai"])
async def test_without_details_asked_the_tokens_carry_only_text(scripted_server, backend):
    scripted_server.reset()
    scripted_server.push({"tokens": TOKENS, "rate": 0})
    events = await completion_events(backend, scripted_server.url, {"max_new_tokens": 20})
    tokens = [e for e in events if isinstance(e, Token)]
    assert "".join(t.text for t in tokens) == "".join(TOKENS)
    assert all(t.logprob is None and t.top == () for t in tokens)


async def test_a_negative_frequency_penalty_reaches_tgi(scripted_server):
    scripted_server.reset()
    scripted_server.push({"tokens": TOKENS, "rate": 0})
    await completion_events(
        "tgi",
        scripted_server.url,
        {"frequency_penalty": -1.5, "grammar": {"type": "regex", "value": "[a-z ]+"}},
    )
    sent = scripted_server.requests(path="/generate_stream")[-1]["body"]["parameters"]
    assert sent["frequency_penalty"] == -1.5
    assert sent["grammar"] == {"type": "regex", "value": "[a-z ]+"}


def create(user, model, **kwargs) -> Generation:
    with transaction.atomic():
        return generation_create(user=user, model=model, origin=Origin.PLAYGROUND, **kwargs)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_a_prompt_streams_through_the_worker_with_token_details_in_its_chunks(
    worker, inference, user, backend_model
):
    backend = backend_model.backend
    inference.push({"tokens": TOKENS, "logprobs": LOGPROBS, "rate": 100})
    generation = await sync_to_async(create)(
        user, backend_model, prompt=PROMPT, params={"max_new_tokens": 32, **DETAILS[backend]}
    )
    socket = await connect(user)
    await socket.send({"type": "subscribe", "generation": str(generation.pk)})
    frames = await socket.receive_until("done", generation=str(generation.pk))

    chunks = [f for f in frames if f["type"] == "chunk"]
    assert chunk_text(frames) == "".join(TOKENS)
    assert seqs(frames) == list(range(1, len(seqs(frames)) + 1))
    details = [token for chunk in chunks for token in chunk["tokens"]]
    assert [t["text"] for t in details] == TOKENS
    assert [t["logprob"] for t in details] == LOGPROBS
    assert all(len(t["top"]) >= 2 for t in details)
    assert frames[-1]["status"] == "done"
    saved = await wait_for_final(str(generation.pk))
    assert (saved.status, saved.text, saved.prompt) == (Status.DONE, "".join(TOKENS), PROMPT)
    assert saved.token_details == details
    assert saved.messages == [] and saved.rendered_prompt == ""
    assert saved.prompt_tokens and saved.generated_tokens >= len(TOKENS)
    body = inference.requests(path=COMPLETION_PATHS[backend])[-1]["body"]
    assert (body.get("inputs") or body.get("prompt")) == PROMPT
    await socket.close()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_a_chat_reply_carries_no_token_details(worker, inference, user, tgi_model):
    inference.push({"tokens": TOKENS, "rate": 100})
    generation = await sync_to_async(create)(
        user, tgi_model, messages=[{"role": "user", "content": "Hi"}]
    )
    socket = await connect(user)
    await socket.send({"type": "subscribe", "generation": str(generation.pk)})
    frames = await socket.receive_until("done", generation=str(generation.pk))
    assert all("tokens" not in f for f in frames)
    assert (await wait_for_final(str(generation.pk))).token_details == []
    await socket.close()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_a_stop_mid_stream_closes_the_completion_request_at_the_server(
    worker, inference, user, backend_model
):
    inference.push({"n_tokens": 2000, "rate": 20})
    generation = await sync_to_async(create)(user, backend_model, prompt=PROMPT)
    generation_id = str(generation.pk)
    socket = await connect(user)
    await socket.send({"type": "subscribe", "generation": generation_id})
    streamed = await socket.receive_chunks(2)
    await socket.send({"type": "stop", "generation": generation_id})
    frames = await socket.receive_until("done", generation=generation_id, timeout=3)

    assert frames[-1]["status"] == "stopped"
    closed = await sync_to_async(inference.wait_for_disconnect)(timeout=3)
    assert closed["path"] == COMPLETION_PATHS[backend_model.backend]
    saved = await wait_for_final(generation_id)
    assert saved.status == Status.STOPPED
    assert saved.text == chunk_text(streamed + frames)
    await socket.close()


@pytest.mark.django_db
def test_a_prompt_is_checked_against_the_completion_parameters(user, tgi_model, unqueued):
    generation = create(
        user, tgi_model, prompt="Once", params={"typical_p": 0.9, "watermark": True, "seed": 3}
    )
    assert generation.params == {
        "max_new_tokens": 64,
        "temperature": 0.7,
        "typical_p": 0.9,
        "watermark": True,
        "seed": 3,
    }
    with pytest.raises(ValidationFailed, match="typical_p must be greater than 0 and less than 1"):
        create(user, tgi_model, prompt="Once", params={"typical_p": 1.0})
    with pytest.raises(ValidationFailed, match="Unknown sampling parameter"):  # a chat reply
        create(user, tgi_model, messages=[{"role": "user", "content": "Hi"}],
               params={"typical_p": 0.9})  # fmt: skip
    assert Generation.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("prompt", "message"),
    [("", "the prompt is empty"), ("a\x00b", "NUL"), ("x" * 40_000, "at most 32,768 fit")],
)
def test_a_bad_prompt_is_refused_and_nothing_is_saved(user, tgi_model, unqueued, prompt, message):
    with pytest.raises(ValidationFailed, match=message):
        create(user, tgi_model, prompt=prompt)
    assert not Generation.objects.exists()


@pytest.mark.django_db
def test_a_prompt_comes_alone_and_only_from_the_playground_or_the_api(user, tgi_model):
    with pytest.raises(ValueError):
        create(user, tgi_model, prompt="Hi", messages=[{"role": "user", "content": "Hi"}])
    with pytest.raises(ValueError), transaction.atomic():
        generation_create(user=user, model=tgi_model, origin=Origin.CHAT, prompt="Hi")


def test_the_scripted_alternatives_are_a_probability_distribution():
    from tests.inference_server.scripts import alternatives

    pairs = alternatives(" dog", -0.2, 5)
    assert pairs[0] == (" dog", -0.2)
    assert sum(math.exp(lp) for _, lp in pairs) <= 1.0


async def test_the_scripted_server_answers_the_openai_sdks_completions(scripted_server):
    import openai

    scripted_server.reset()
    client = openai.AsyncOpenAI(base_url=f"{scripted_server.url}/v1", api_key="x", max_retries=0)
    scripted_server.push({"tokens": TOKENS, "logprobs": LOGPROBS, "rate": 0})
    whole = await client.completions.create(model="m", prompt=PROMPT, logprobs=1, max_tokens=9)
    choice = whole.choices[0]
    assert choice.text == "".join(TOKENS) and choice.logprobs.token_logprobs == LOGPROBS
    assert whole.usage.completion_tokens == len(TOKENS)

    scripted_server.push({"tokens": TOKENS, "rate": 0})
    stream = await client.completions.create(
        model="m", prompt=PROMPT, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "".join(TOKENS)
    assert chunks[-1].usage.prompt_tokens > 0
    with pytest.raises(openai.BadRequestError, match="logprobs"):
        await client.completions.create(model="m", prompt=PROMPT, logprobs=6)


async def test_the_scripted_tgi_server_gives_top_tokens_to_the_text_generation_client(
    scripted_server,
):
    import text_generation

    scripted_server.reset()
    scripted_server.push({"tokens": TOKENS, "logprobs": LOGPROBS, "rate": 0})
    client = text_generation.AsyncClient(scripted_server.url)
    events = [e async for e in client.generate_stream(PROMPT, top_n_tokens=3)]
    content = [e for e in events if not e.token.special]
    assert [e.token.logprob for e in content] == LOGPROBS
    assert all(len(e.top_tokens) == 3 for e in content)


@pytest.mark.parametrize("backend", ["tgi", "openai"])
@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.name)
async def test_a_completion_meets_a_fault_with_the_same_code_and_words_as_a_chat_reply(
    inference, fault, backend
):
    url = inference.url if fault.script is not None else f"http://127.0.0.1:{free_port()}"
    if fault.script is not None:
        inference.push(fault.script)
    client = backend_for(Endpoint(kind=backend, url=url), timeouts=Timeouts(2.0, 20.0))
    text = []
    with pytest.raises(BackendError) as raised:
        async for event in client.complete(PROMPT, SamplingParams(max_new_tokens=64)):
            if isinstance(event, Token):
                text.append(event.text)
    assert raised.value.code == fault.code
    for words in fault.says:
        assert words.lower() in raised.value.detail.lower()
    assert "".join(text) == fault.streamed
