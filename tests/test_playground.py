"""The playground's page and calls: the models a user may complete with, controls bounded
by the backend's ranges, a completion started, refused (nothing saved) or shown as code,
presets saved and loaded, and a chat template rendered by the model's server."""

from __future__ import annotations

import json
import shlex

import pytest
from django.test import Client

from inference.params import params_parse, params_to_tgi
from tests.factories import LanguageModelFactory, ModelEndpointFactory, UserFactory, gate_factory
from webapp.api.parse import completion_parse, sampling_parse
from webapp.generations.models import Generation
from webapp.playground.models import PlaygroundPreset

pytestmark = pytest.mark.django_db


def post(client, name: str, body: dict, **kwargs):
    return client.post(
        f"/playground/{name}", json.dumps(body), content_type="application/json", **kwargs
    )


def test_the_page_lists_only_the_models_the_user_may_use(client, member, tgi_model, openai_model):
    LanguageModelFactory(slug="gated-one", access_policy="gated", gate=gate_factory())
    LanguageModelFactory(slug="retired", is_active=False)
    page = client.get("/playground/")
    assert page.status_code == 200
    slugs = [m.slug for m in page.context["models"]]
    assert sorted(slugs) == ["scripted-openai", "scripted-tgi"]


def test_a_visitor_is_sent_to_sign_in(client):
    assert client.get("/playground/").status_code == 302
    assert post(client, "complete", {}).status_code == 302


def test_each_control_allows_only_the_backends_range(client, member, tgi_model, openai_model):
    tgi = client.get("/playground/?model=scripted-tgi").content.decode()
    assert (
        'name="top_p" id="param-top_p" data-kind="float" step="0.01" min="0.01" max="0.99"' in tgi
    )
    assert (
        'name="top_n_tokens" id="param-top_n_tokens" data-kind="int" step="1" min="0" max="5"'
        in tgi
    )
    assert 'name="frequency_penalty"' in tgi and 'min="-2.0" max="2.0"' in tgi
    assert (
        'name="watermark"' in tgi and 'id="grammar-type"' in tgi and 'id="template-render"' in tgi
    )
    openai = client.get("/playground/?model=scripted-openai").content.decode()
    assert ">max_tokens</label>" in openai  # the backend's own name
    assert 'name="logprobs" id="param-logprobs" data-kind="int" step="1" min="0" max="5"' in openai
    temperature = 'id="param-temperature" data-kind="float" step="0.01" min="0.0" max="2.0"'
    assert temperature in openai
    assert 'id="grammar-type"' not in openai and 'id="template-unavailable"' in openai


def test_a_completion_starts_with_the_parameters_as_sent(client, member, tgi_model, unqueued):
    answer = post(
        client,
        "complete",
        {
            "model": "scripted-tgi",
            "prompt": "Once upon",
            "params": {"top_n_tokens": 2, "details": True},
        },
    )
    assert answer.status_code == 200, answer.content
    generation = Generation.objects.get(pk=answer.json()["generation"])
    assert (generation.origin, generation.prompt, generation.user) == (
        "playground",
        "Once upon",
        member,
    )
    assert generation.params == {
        "max_new_tokens": 64,
        "temperature": 0.7,
        "top_n_tokens": 2,
        "details": True,
    }
    assert answer.json()["params"] == generation.params
    assert generation.channel_group == f"playground.{member.pk}"  # one group for every run


@pytest.mark.parametrize(
    ("params", "param", "detail"),
    [
        ({"temperature": 0}, "temperature", "temperature must be greater than 0"),
        ({"top_n_tokens": 9}, "top_n_tokens", "top_n_tokens must be at least 0 and at most 5"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "stop takes at most 4 sequences"),
        ({"beams": 4}, None, "Unknown sampling parameter(s): beams"),
        ({"temperature": 10**400}, "temperature", "temperature must be at most"),
        ({"max_new_tokens": 10**400}, "max_new_tokens", "max_new_tokens must be at most"),
        ("hot", None, "The parameters must be a JSON object"),
    ],
)
def test_a_bad_value_gets_a_clear_error_and_nothing_is_saved(
    client, member, tgi_model, unqueued, params, param, detail
):
    answer = post(client, "complete", {"model": "scripted-tgi", "prompt": "Hi", "params": params})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert detail in error["detail"] and error.get("param") == param
    assert not Generation.objects.exists()


def test_a_model_the_user_may_not_use_is_refused_with_the_reason_and_audited(
    client, member, unqueued
):
    from webapp.access.models import AuditEntry

    gated = LanguageModelFactory(slug="gated-one", access_policy="gated", gate=gate_factory())
    ModelEndpointFactory(model=gated)
    answer = post(client, "complete", {"model": "gated-one", "prompt": "Hi", "params": {}})
    assert answer.status_code == 403
    assert "request access" in answer.json()["error"]["detail"]
    assert not Generation.objects.exists()
    entry = AuditEntry.objects.get(action="chat.refused")
    assert (entry.target, entry.actor) == ("gated-one", member)
    missing = post(client, "complete", {"model": "no-such-model", "prompt": "Hi", "params": {}})
    assert missing.status_code == 404


def test_every_post_needs_the_csrf_token(tgi_model, unqueued):
    user = UserFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    body = {"model": "scripted-tgi", "prompt": "Hi", "params": {}}
    for name in ("complete", "code", "chat-template", "presets"):
        assert post(client, name, {**body, "name": "x"}).status_code == 403, name
    page = client.get("/playground/")
    token = page.cookies["csrftoken"].value
    assert post(client, "complete", body, HTTP_X_CSRFTOKEN=token).status_code == 200
    assert Generation.objects.count() == 1 and not PlaygroundPreset.objects.exists()


def test_view_code_shows_the_same_request_for_curl_the_openai_sdk_and_text_generation(
    client, member, tgi_model, inference
):
    params = {"temperature": 0.5, "top_n_tokens": 3, "typical_p": 0.9, "stop": ["\n\n"]}
    answer = post(client, "code", {"model": "scripted-tgi", "prompt": "It's", "params": params})
    code = answer.json()
    assert "/v1/completions" in code["curl"] and "Bearer gh_..." in code["curl"]
    assert '"max_tokens": 64' in code["curl"] and '"prompt": "It\'"\'"\'s"' in code["curl"]
    assert "client.completions.create(" in code["openai"] and "api_key='gh_...'" in code["openai"]
    assert "generate_stream(" in code["backend"] and "top_n_tokens=3" in code["backend"]
    assert "typical_p=0.9" in code["backend"] and "stop_sequences=['\\n\\n']" in code["backend"]
    assert code["left_out"] == ["typical_p"]  # TGI's own: /v1 does not take it
    assert '"logprobs": 3' in code["curl"] and "logprobs=3" in code["openai"]
    for snippet in (code["openai"], code["backend"]):
        compile(snippet, "snippet", "exec")  # valid Python as shown
    assert f"Client({inference.url!r}, timeout=600)" in code["backend"]  # as details show it

    tgi_model.endpoints.update(api_key="s3cret")
    keyed = post(client, "code", {"model": "scripted-tgi", "prompt": "x", "params": {}}).json()
    assert "Bearer <server API key>" in keyed["backend"] and "s3cret" not in str(keyed)
    compile(keyed["backend"], "snippet", "exec")
    assert (
        post(
            client, "code", {"model": "scripted-tgi", "prompt": "x", "params": {"top_p": 1}}
        ).status_code
        == 400
    )


def curl_body(curl: str) -> dict:
    return json.loads(shlex.split(curl.replace("\\\n", " "))[-1])


@pytest.mark.parametrize(
    ("params", "logprobs"),
    [
        ({"top_n_tokens": 2, "details": True}, 2),
        ({"top_n_tokens": 4}, 4),
        ({"details": True}, 0),  # each token's own logprob, no alternatives
        ({"details": False, "top_n_tokens": 0}, None),  # no token details asked
    ],
)
def test_view_code_asks_the_api_for_tgis_token_details_as_logprobs(
    client, member, tgi_model, params, logprobs
):
    body = {"model": "scripted-tgi", "prompt": "Hi", "params": {"seed": 1, **params}}
    code = post(client, "code", body).json()
    sent = curl_body(code["curl"])
    assert sent.get("logprobs") == logprobs and code["left_out"] == []
    assert (f"logprobs={logprobs}" in code["openai"]) == (logprobs is not None)
    # What the API makes of the snippet's body is what the playground sends to TGI.
    call = completion_parse(sent)
    api = params_parse(
        {**tgi_model.default_params, **sampling_parse(call.raw, backend="tgi",
                                                      context_length=None, completion=True)},
        backend="tgi",
        completion=True,
    )  # fmt: skip
    playground = params_parse(
        {**tgi_model.default_params, **body["params"]}, backend="tgi", completion=True
    )
    assert params_to_tgi(api) == params_to_tgi(playground)
    assert api.alternatives == playground.alternatives


def test_view_code_for_an_openai_compatible_model_calls_its_server_with_the_sdk(
    client, member, openai_model, inference
):
    params = {"logprobs": 2, "presence_penalty": 0.5}
    code = post(
        client, "code", {"model": "scripted-openai", "prompt": "Hi", "params": params}
    ).json()
    assert "logprobs=2" in code["openai"] and "presence_penalty=0.5" in code["openai"]
    assert f"base_url='{inference.url}/v1'" in code["backend"]
    assert code["left_out"] == []


def test_a_preset_is_saved_loaded_replaced_and_deleted(client, member, tgi_model):
    body = {
        "model": "scripted-tgi",
        "prompt": "Dear diary,",
        "params": {"seed": 4, "watermark": True},
    }
    saved = post(client, "presets", {**body, "name": "Diary"}).json()["preset"]
    page = client.get(saved["url"])
    assert page.context["prompt"] == "Dear diary,"
    fields = {f.name: f.value for f in page.context["fields"]}
    assert (fields["seed"], fields["watermark"]) == (4, True)

    post(client, "presets", {**body, "params": {"seed": 5}, "name": "Diary"})
    assert PlaygroundPreset.objects.get().params == {"seed": 5}

    refused = post(client, "presets", {**body, "params": {"seed": -1}, "name": "Other"})
    assert (
        refused.status_code == 400
        and "seed must be at least 0" in refused.json()["error"]["detail"]
    )
    assert PlaygroundPreset.objects.count() == 1

    stranger = Client()
    stranger.force_login(UserFactory())
    assert stranger.get(saved["url"]).context["prompt"] == ""  # someone else's is not found
    assert stranger.post(f"/playground/presets/{saved['id']}/delete").status_code == 302
    assert PlaygroundPreset.objects.exists()
    client.post(f"/playground/presets/{saved['id']}/delete")
    assert not PlaygroundPreset.objects.exists()


def test_the_chat_template_is_rendered_by_the_tgi_server(client, member, tgi_model, inference):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}]
    answer = post(client, "chat-template", {"model": "scripted-tgi", "messages": messages})
    assert answer.status_code == 200
    assert answer.json()["prompt"] == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert inference.requests(path="/chat_tokenize")[-1]["body"]["messages"] == messages


def test_the_chat_template_is_refused_clearly_where_the_server_cannot_render_it(
    client, member, openai_model, tgi_model
):
    messages = [{"role": "user", "content": "Hello!"}]
    answer = post(client, "chat-template", {"model": "scripted-openai", "messages": messages})
    assert answer.status_code == 400 and "only a TGI server" in answer.json()["error"]["detail"]
    bad = post(client, "chat-template", {"model": "scripted-tgi", "messages": [{"role": "robot"}]})
    assert bad.status_code == 400 and "Message 1 must be" in bad.json()["error"]["detail"]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
async def test_many_runs_from_one_page_stay_within_what_a_socket_may_follow(
    worker, inference, openai_model
):
    from channels.db import database_sync_to_async as sync_to_async

    from tests.ws import connect
    from webapp.playground.services import playground_complete

    user = await sync_to_async(UserFactory)(is_staff=True)  # staff: no per-minute limit
    socket = await connect(user)
    inference.set_default({"tokens": ["ok"], "rate": 0})
    for _ in range(66):  # past the 64 groups one socket may follow
        generation = await sync_to_async(playground_complete)(
            user=user, slug="scripted-openai", prompt="Go", params={}
        )
        await socket.send({"type": "subscribe", "generation": str(generation.pk)})
        frames = await socket.receive_until("done", generation=str(generation.pk))
        assert all(f["type"] != "error" for f in frames), frames
    await socket.close()
