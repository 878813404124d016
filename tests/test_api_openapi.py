"""/v1/openapi.json describes the API, and schemathesis fuzzing it against a live server
(the real worker, the scripted inference server) finds no server error."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
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


def _schema(live_site, model_slug: str):
    """The served document, with ``model`` narrowed to a real model and an unknown one so
    that the fuzzer reaches generations and not only 404s."""
    raw = httpx.get(f"{live_site.url}/v1/openapi.json").json()
    names = {"type": "string", "enum": [model_slug, "no-such-model"]}
    for request in ("ChatCompletionRequest", "CompletionRequest"):
        raw["components"]["schemas"][request]["properties"]["model"] = names
    raw["paths"]["/models/{model}"]["get"]["parameters"][0]["schema"] = names
    return schemathesis.openapi.from_dict(raw)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzing_the_api_finds_no_server_error(live_site, worker, inference, openai_model, mode):
    secret = token_create(user=UserFactory(), name="fuzz", scopes=["chat", "models"])[1]
    headers = {"Authorization": f"Bearer {secret}"}
    schema = _schema(live_site, openai_model.slug)
    statuses: list[int] = []

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
        statuses.append(response.status_code)
        if "application/json" in str(response.headers.get("content-type")):
            body = response.json()
            if response.status_code >= 400:
                assert set(body["error"]) == {"message", "type", "param", "code"}

    fuzz()
    assert statuses and max(statuses) < 500
    if mode == GenerationMode.POSITIVE:
        assert 200 in statuses  # it did reach real generations
    else:
        assert 400 in statuses
