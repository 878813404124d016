"""/v1/openapi.json describes the API, and schemathesis fuzzing it against a live server
(the real worker, the scripted inference server) finds no server error."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.factories import UserFactory
from webapp.accounts.tokens.services import token_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EXAMPLES = 40  # per mode: enough to reach every operation, short enough for CI


def test_the_document_lists_every_endpoint_with_bearer_auth(live_site):
    document = httpx.get(f"{live_site.url}/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": f"{live_site.url}/v1"}]
    assert set(document["paths"]) == {
        "/models",
        "/models/{model}",
        "/chat/completions",
        "/completions",
    }
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def _schema(live_site, *model_slugs: str):
    """The served document, with ``model`` narrowed to real models (one per backend) and an
    unknown one so that the fuzzer reaches generations and not only 404s."""
    raw = httpx.get(f"{live_site.url}/v1/openapi.json").json()
    names = {"type": "string", "enum": [*model_slugs, "no-such-model"]}
    for request in ("ChatCompletionRequest", "CompletionRequest"):
        raw["components"]["schemas"][request]["properties"]["model"] = names
    raw["paths"]["/models/{model}"]["get"]["parameters"][0]["schema"] = names
    return schemathesis.openapi.from_dict(raw)


def _reaching_generations(schema, model_slug: str) -> list:
    """One plain call of each completion endpoint, tried first: however the random cases
    fall, the run reaches a real generation of each kind."""
    hello = [{"role": "user", "content": "Hi"}]
    return [
        schema["/chat/completions"]["POST"].Case(body={"model": model_slug, "messages": hello}),
        schema["/completions"]["POST"].Case(body={"model": model_slug, "prompt": "Hi"}),
    ]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzing_the_api_finds_no_server_error(
    live_site, worker, inference, openai_model, tgi_model, mode
):
    scopes = ["chat", "completions", "models"]
    secret = token_create(user=UserFactory(), name="fuzz", scopes=scopes)[1]
    headers = {"Authorization": f"Bearer {secret}"}
    schema = _schema(live_site, openai_model.slug, tgi_model.slug)
    statuses: dict[str, list[int]] = {}

    @given(case=schema.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case) -> None:
        response = case.call_and_validate(
            base_url=f"{live_site.url}/v1", headers=headers, checks=[not_a_server_error]
        )
        statuses.setdefault(case.operation.path, []).append(response.status_code)
        if "application/json" in str(response.headers.get("content-type")):
            body = response.json()
            if response.status_code >= 400:
                assert set(body["error"]) == {"message", "type", "param", "code"}

    if mode == GenerationMode.POSITIVE:
        for case in _reaching_generations(schema, openai_model.slug):
            fuzz = example(case=case)(fuzz)
    fuzz()
    everything = [status for each in statuses.values() for status in each]
    assert everything and max(everything) < 500
    # The token holds every scope: each completion body is checked, none stops at 403.
    assert 403 not in statuses.get("/chat/completions", []) + statuses.get("/completions", [])
    if mode == GenerationMode.POSITIVE:
        assert 200 in statuses["/chat/completions"] and 200 in statuses["/completions"]
    else:
        assert 400 in everything
