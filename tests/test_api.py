"""The OpenAI-compatible /v1 API with the official ``openai`` SDK as the client, against a
real uvicorn, the real Celery worker and the scripted inference server."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import openai
import pytest
from django.utils import timezone

from tests.factories import GrantFactory, LanguageModelFactory, UserFactory, gate_factory
from webapp.accounts.tokens.models import PersonalToken
from webapp.accounts.tokens.services import token_create, token_revoke
from webapp.generations.models import Generation

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REPLY = "Hello from the scripted server. This reply is deterministic and streams token by token."
ALL_SCOPES = ["chat", "completions", "models"]


def secret_for(user, scopes=ALL_SCOPES, **fields) -> str:
    return token_create(user=user, name="script", scopes=list(scopes), **fields)[1]


def client_for(live_site, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_site.url}/v1", api_key=secret, max_retries=0, timeout=30)


@pytest.fixture
def api(live_site, worker, inference):
    """An SDK client whose token has every API scope, for a user of the scripted model.

    Afterwards, waits until the worker is done with every generation the test started
    (saved and its slot given back), so none of its writes meets the tables' truncation.
    """
    yield client_for(live_site, secret_for(UserFactory()))
    deadline = time.monotonic() + 15
    for generation in Generation.objects.filter(started_at__isnull=False):
        while f"generation {generation.pk} ended" not in worker.recent():
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)


def ask(client, model, **fields):
    return client.chat.completions.create(
        model=model.slug, messages=[{"role": "user", "content": "Hi"}], **fields
    )


def test_the_model_list_has_only_the_models_the_user_may_use_through_the_api(api, openai_model, db):
    gate = gate_factory(slug="api-gate", levels=("chat", "api"))
    LanguageModelFactory(slug="gated-api", access_policy="gated", gate=gate)
    LanguageModelFactory(slug="private-api", access_policy="private")
    LanguageModelFactory(slug="retired-api", is_active=False)
    listed = api.models.list()
    assert [m.id for m in listed.data] == [openai_model.slug]
    assert listed.data[0].object == "model" and listed.data[0].owned_by == "gatehouse"
    assert api.models.retrieve(openai_model.slug).id == openai_model.slug


def test_a_chat_completion_answers_whole_with_its_usage_and_is_an_api_generation(api, openai_model):
    completion = ask(api, openai_model, max_tokens=32, temperature=0.5, seed=3)
    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == openai_model.slug
    assert completion.usage.completion_tokens == 16
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 16
    generation = Generation.objects.get()
    assert generation.origin == "api" and generation.status == "done"
    assert generation.params == {"max_new_tokens": 32, "temperature": 0.5, "seed": 3}
    assert completion.id == f"chatcmpl-{generation.pk.hex}"


def test_a_streamed_chat_completion_arrives_in_order_with_usage_at_the_end(
    api, openai_model, inference
):
    stream = ask(api, openai_model, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 16
    assert all(c.usage is None for c in chunks[:-1])


def test_a_stream_ends_with_done_over_plain_http(live_site, api, openai_model):
    response = httpx.post(
        f"{live_site.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {api.api_key}"},
        json={"model": openai_model.slug, "messages": [{"role": "user", "content": "Hi"}],
              "stream": True},
        timeout=30,
    )  # fmt: skip
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line for line in response.text.split("\n\n") if line]
    assert events[-1] == "data: [DONE]"


def test_a_client_that_leaves_mid_stream_stops_the_generation_at_the_inference_server(
    api, openai_model, inference
):
    inference.push({"n_tokens": 2000, "rate": 40})
    stream = ask(api, openai_model, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    stream.close()
    request = inference.wait_for_disconnect(timeout=15)
    assert request["tokens_sent"] < 2000
    generation = Generation.objects.get()
    for _ in range(100):
        generation.refresh_from_db()
        if generation.status == "stopped":
            break
        time.sleep(0.1)
    assert generation.status == "stopped" and generation.text


def test_a_client_that_leaves_before_a_whole_answer_stops_the_generation_too(
    live_site, api, openai_model, inference
):
    inference.push({"n_tokens": 2000, "rate": 40})
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{live_site.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {api.api_key}"},
            json={"model": openai_model.slug, "messages": [{"role": "user", "content": "Hi"}]},
            timeout=1.5,
        )
    assert inference.wait_for_disconnect(timeout=15)["tokens_sent"] < 2000


def test_a_bad_token_is_refused_with_401_in_openais_shape(live_site, api, openai_model):
    bad = client_for(live_site, "gh_" + "x" * 40)
    with pytest.raises(openai.AuthenticationError) as refused:
        ask(bad, openai_model)
    assert refused.value.status_code == 401
    assert refused.value.body["code"] == "invalid_api_key"
    assert "not valid" in refused.value.body["message"]
    assert set(refused.value.body) == {"message", "type", "param", "code"}


def test_an_expired_a_revoked_token_and_a_deactivated_user_are_refused_with_401(
    live_site, api, openai_model
):
    user = UserFactory()
    expired = secret_for(user, expires_at=timezone.now() + timedelta(seconds=1))
    PersonalToken.objects.filter(user=user).update(expires_at=timezone.now() - timedelta(days=1))
    revoked_token, revoked = token_create(user=user, name="old", scopes=ALL_SCOPES)
    token_revoke(user=user, token_id=revoked_token.pk)
    for secret, words in ((expired, "expired on"), (revoked, "was revoked on")):
        with pytest.raises(openai.AuthenticationError) as refused:
            client_for(live_site, secret).models.list()
        assert words in refused.value.message
    gone = UserFactory()
    secret = secret_for(gone)
    gone.is_active = False
    gone.save()
    with pytest.raises(openai.AuthenticationError) as refused:
        ask(client_for(live_site, secret), openai_model)
    assert "deactivated" in refused.value.message
    assert not Generation.objects.exists()


def test_each_endpoint_needs_its_scope(live_site, api, openai_model):
    user = UserFactory()
    downloads_only = client_for(live_site, secret_for(user, ["downloads"]))
    chat_only = client_for(live_site, secret_for(user, ["chat"]))
    with pytest.raises(openai.PermissionDeniedError) as refused:
        downloads_only.models.list()
    assert "models scope" in refused.value.message
    with pytest.raises(openai.PermissionDeniedError):
        ask(downloads_only, openai_model)
    with pytest.raises(openai.PermissionDeniedError):
        chat_only.models.list()
    assert ask(chat_only, openai_model).choices[0].message.content == REPLY


def test_every_call_records_the_tokens_last_use(live_site, api, openai_model):
    user = UserFactory()
    token, secret = token_create(user=user, name="script", scopes=ALL_SCOPES)
    client_for(live_site, secret).models.list()
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None and token.last_used_ip == "127.0.0.1"
    ask(client_for(live_site, secret), openai_model)
    token.refresh_from_db()
    assert token.last_used_at > first


def test_a_gated_model_without_the_api_level_says_how_to_apply(live_site, api, inference):
    from tests.factories import ModelEndpointFactory

    gate = gate_factory(slug="research-api", name="Research API", levels=("chat", "api"))
    model = LanguageModelFactory(slug="gated-chat", access_policy="gated", gate=gate)
    ModelEndpointFactory(model=model, url=inference.url)
    user = UserFactory()
    GrantFactory(gate=gate, user=user, levels=["chat"])
    client = client_for(live_site, secret_for(user))
    assert "gated-chat" not in [m.id for m in client.models.list().data]
    with pytest.raises(openai.PermissionDeniedError) as refused:
        ask(client, model)
    message = refused.value.message
    assert "does not include API" in message
    assert f"{live_site.url}/gates/research-api/" in message
    assert refused.value.body["param"] == "model"
    holder = UserFactory()
    GrantFactory(gate=gate, user=holder, levels=["chat", "api"])
    holder_client = client_for(live_site, secret_for(holder))
    assert "gated-chat" in [m.id for m in holder_client.models.list().data]
    assert ask(holder_client, model).choices[0].message.content == REPLY


def test_an_unknown_model_is_a_404(api):
    with pytest.raises(openai.NotFoundError) as refused:
        api.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "Hi"}]
        )
    assert refused.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        api.models.retrieve("no-such-model")


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"temperature": 3}, "temperature", "temperature must be at least 0 and at most 2"),
        ({"top_p": 0}, "top_p", "top_p must be greater than 0"),
        ({"max_tokens": 0}, "max_tokens", "max_tokens must be at least 1"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
        ({"n": 2}, "n", "not supported"),
        ({"extra_body": {"colour": "red"}}, "colour", "Unrecognized request argument"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_parameter(api, openai_model, fields, param, words):
    with pytest.raises(openai.BadRequestError) as refused:
        ask(api, openai_model, **fields)
    assert refused.value.body["param"] == param
    assert words in refused.value.message
    assert not Generation.objects.exists()


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/chat/completions", "temperature"),
        ("/v1/chat/completions", "max_tokens"),
        ("/v1/chat/completions", "seed"),
        ("/v1/completions", "temperature"),
        ("/v1/completions", "max_tokens"),
        ("/v1/completions", "logprobs"),
    ],
)
def test_a_number_too_large_for_a_float_is_a_400_naming_the_parameter(
    live_site, api, openai_model, path, name
):
    body = {"model": openai_model.slug, "prompt": "Hi"}
    if path == "/v1/chat/completions":
        body = {"model": openai_model.slug, "messages": [{"role": "user", "content": "Hi"}]}
    response = httpx.post(
        f"{live_site.url}{path}",
        headers={"Authorization": f"Bearer {api.api_key}"},
        content=json.dumps({**body, name: 10**400}),  # a 1 and 400 zeros, as JSON allows
        timeout=30,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == name and error["message"].startswith(f"{name} must be")
    assert error["type"] == "invalid_request_error"
    assert not Generation.objects.exists()


def test_bad_messages_are_a_400_naming_the_message(live_site, api, openai_model):
    with pytest.raises(openai.BadRequestError) as refused:
        api.chat.completions.create(
            model=openai_model.slug, messages=[{"role": "user", "content": "Hi"}, {"role": "tool"}]
        )
    assert refused.value.body["param"] == "messages[1].role"
    response = httpx.post(
        f"{live_site.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {api.api_key}"},
        content=b"{not json",
    )
    assert response.status_code == 400 and "JSON object" in response.json()["error"]["message"]


def test_going_over_a_limit_is_a_429_with_retry_after(api, openai_model, settings, live_site):
    user = UserFactory()
    client = client_for(live_site, secret_for(user))
    for _ in range(20):  # the test settings' replies per minute
        ask(client, openai_model, max_tokens=1)
    with pytest.raises(openai.RateLimitError) as refused:
        ask(client, openai_model)
    assert int(refused.value.response.headers["Retry-After"]) >= 1
    assert refused.value.body["code"] == "rate_limited"


def test_a_spent_daily_token_budget_is_a_429_with_retry_after_at_midnight(
    api, openai_model, live_site
):
    from inference import relay
    from webapp.generations.limits import tokens_key, until_midnight

    user = UserFactory()
    key = tokens_key(user.pk, openai_model.pk, time.time())
    relay.sync_client().set(key, 10**9, ex=3600)  # more than any budget
    try:
        with pytest.raises(openai.RateLimitError) as refused:
            client_for(live_site, secret_for(user)).completions.create(
                model=openai_model.slug, prompt="Hi"
            )
    finally:
        relay.sync_client().delete(key)
    assert refused.value.body["code"] == "daily_tokens"
    assert "resets at midnight UTC" in refused.value.message
    retry_after = int(refused.value.response.headers["Retry-After"])
    assert abs(retry_after - until_midnight(time.time())) <= 5
    assert not Generation.objects.exists()


def test_a_third_call_at_once_is_a_429_with_retry_after_until_one_ends(
    api, openai_model, inference
):
    inference.push({"n_tokens": 2000, "rate": 40}, {"n_tokens": 2000, "rate": 40})
    streams = [ask(api, openai_model, stream=True) for _ in range(2)]  # the limit: 2 at once
    with pytest.raises(openai.RateLimitError) as refused:
        ask(api, openai_model)
    assert refused.value.body["code"] == "too_many_running"
    assert refused.value.response.headers["Retry-After"] == "5"
    assert Generation.objects.count() == 2
    for stream in streams:
        stream.close()
    deadline = time.monotonic() + 15
    while Generation.objects.filter(status__in=("queued", "streaming")).exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert ask(api, openai_model).choices[0].message.content == REPLY  # one ended: room again


def test_a_busy_backend_is_a_429_with_retry_after(api, openai_model, inference):
    inference.push(*[{"status": 429, "error": "Model is overloaded"}] * 4)
    with pytest.raises(openai.RateLimitError) as refused:
        ask(api, openai_model)
    assert refused.value.body["code"] == "backend_overloaded"
    assert refused.value.response.headers["Retry-After"]


def test_a_signed_in_browser_session_is_not_api_auth(live_site, api, openai_model, client):
    user = UserFactory()
    client.force_login(user)
    cookies = {"sessionid": client.cookies["sessionid"].value}
    for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions")):
        response = httpx.request(
            method,
            f"{live_site.url}{path}",
            cookies=cookies,
            json={"model": openai_model.slug, "messages": [{"role": "user", "content": "Hi"}]},
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "missing_api_key"
    assert not Generation.objects.exists()


TOKENS = [" the", " quick", " brown", " fox"]
LOGPROBS = [-0.1, -0.5, -1.2, -0.3]


def test_a_raw_completion_continues_the_prompt_with_its_logprobs(api, backend_model, inference):
    inference.push({"tokens": TOKENS, "logprobs": LOGPROBS, "rate": 0})
    completion = api.completions.create(
        model=backend_model.slug, prompt="Once upon a time", max_tokens=8, logprobs=2
    )
    choice = completion.choices[0]
    assert choice.text == "".join(TOKENS) and completion.object == "text_completion"
    assert choice.logprobs.tokens == TOKENS
    assert choice.logprobs.token_logprobs == pytest.approx(LOGPROBS)
    # Two alternatives at least (OpenAI's servers add the chosen token when it is not among them).
    assert all(2 <= len(top) <= 3 for top in choice.logprobs.top_logprobs)
    assert choice.logprobs.text_offset == [0, 4, 10, 16]
    generation = Generation.objects.get()
    assert completion.usage.completion_tokens == generation.generated_tokens  # TGI counts its EOS
    assert generation.origin == "api" and generation.prompt == "Once upon a time"
    assert generation.messages == []


def test_a_streamed_raw_completion_ends_with_usage_and_done(api, backend_model, inference):
    inference.push({"tokens": TOKENS, "rate": 0})
    stream = api.completions.create(
        model=backend_model.slug,
        prompt="Once upon a time",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "".join(TOKENS)
    assert chunks[-1].usage.completion_tokens == Generation.objects.get().generated_tokens
    assert all(c.choices[0].logprobs is None for c in chunks if c.choices)


def test_a_streamed_raw_completion_carries_each_tokens_logprobs(api, backend_model, inference):
    inference.push({"tokens": TOKENS, "logprobs": LOGPROBS, "rate": 20})
    stream = api.completions.create(
        model=backend_model.slug, prompt="Once upon a time", logprobs=2, stream=True
    )
    tokens, token_logprobs, top_logprobs, offsets = [], [], [], []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].text:
            details = chunk.choices[0].logprobs
            assert "".join(details.tokens) == chunk.choices[0].text
            tokens += details.tokens
            token_logprobs += details.token_logprobs
            top_logprobs += details.top_logprobs
            offsets += details.text_offset
    assert tokens == TOKENS
    assert token_logprobs == pytest.approx(LOGPROBS)
    assert all(2 <= len(top) <= 3 for top in top_logprobs)
    assert offsets == [0, 4, 10, 16]  # in the whole completion's text, not the chunk's


def test_raw_completions_need_their_own_scope_and_take_the_completion_parameters(
    live_site, api, openai_model
):
    chat_only = client_for(live_site, secret_for(UserFactory(), ["chat"]))
    with pytest.raises(openai.PermissionDeniedError) as refused:
        chat_only.completions.create(model=openai_model.slug, prompt="Hi")
    assert "completions scope" in refused.value.message
    with pytest.raises(openai.BadRequestError) as refused:
        api.completions.create(model=openai_model.slug, prompt="Hi", logprobs=6)
    assert refused.value.body["param"] == "logprobs"
    with pytest.raises(openai.BadRequestError) as refused:
        api.completions.create(model=openai_model.slug, prompt="Hi", frequency_penalty=3)
    assert refused.value.body["param"] == "frequency_penalty"
    assert (
        api.completions.create(
            model=openai_model.slug, prompt="Hi", frequency_penalty=0.5, presence_penalty=-1
        )
        .choices[0]
        .text
    )
    assert Generation.objects.get().params["frequency_penalty"] == 0.5


def test_a_client_that_leaves_a_raw_completion_stream_stops_it_at_the_server(
    api, openai_model, inference
):
    inference.push({"n_tokens": 2000, "rate": 40})
    stream = api.completions.create(model=openai_model.slug, prompt="Count:", stream=True)
    next(iter(stream))
    stream.close()
    assert inference.wait_for_disconnect(timeout=15)["tokens_sent"] < 2000


def test_an_unknown_path_is_a_404_in_openais_shape(live_site):
    response = httpx.get(f"{live_site.url}/v1/embeddings")
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_url"


def test_a_reply_that_breaks_off_mid_stream_raises_in_the_sdk(api, openai_model, inference):
    inference.push({"fail_after": 3, "error": "CUDA out of memory"})
    stream = ask(api, openai_model, stream=True)
    with pytest.raises(openai.APIError) as failed:
        list(stream)
    assert failed.value.body["code"] == "backend_failed"
    inference.push({"fail_after": 3, "error": "CUDA out of memory"})
    with pytest.raises(openai.InternalServerError) as failed:
        ask(api, openai_model)
    assert failed.value.status_code == 502
    assert Generation.objects.filter(status="failed").count() == 2


def test_a_refused_call_still_records_the_tokens_last_use(live_site, api):
    token, secret = token_create(user=UserFactory(), name="script", scopes=ALL_SCOPES)
    with pytest.raises(openai.NotFoundError):
        client_for(live_site, secret).chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "Hi"}]
        )
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_ip == "127.0.0.1"


def test_an_api_call_counts_towards_the_users_tokens_on_the_model(api, openai_model):
    from inference import relay
    from webapp.generations.limits import tokens_key

    completion = ask(api, openai_model)
    user = Generation.objects.get().user
    used = relay.sync_client().get(tokens_key(user.pk, openai_model.pk, time.time()))
    assert int(used) == completion.usage.total_tokens
