"""The one rule at the API's entry points: every policy and every kind of user, through a
personal token, is let in or refused with the rule's sentence (the API needs the gate's
``api`` level, which neither a chat nor a weights grant gives)."""

from __future__ import annotations

import pytest

from tests.access_kinds import (
    GATE,
    KINDS,
    POLICIES,
    expected_refusal,
    refusal_matches,
    user_build,
    world_build,
)
from webapp.accounts.tokens.services import token_create
from webapp.generations.models import Generation

pytestmark = pytest.mark.django_db(transaction=True)  # the views hand connections back
SIGNED_IN = [kind for kind in KINDS if kind != "anonymous"]


def expected_api_refusal(policy: str, kind: str) -> str | None:
    if policy == "gated" and kind in ("granted chat only", "granted weights"):
        return f"Your access to {GATE} does not include API; ask for it on the gate's page."
    return expected_refusal(policy, kind)


def bearer(user) -> dict[str, str]:
    secret = token_create(user=user, name="matrix", scopes=["chat", "completions", "models"])[1]
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.mark.parametrize("kind", SIGNED_IN)
@pytest.mark.parametrize("policy", POLICIES)
def test_each_kind_of_user_at_each_api_entry_point(client, policy, kind, unqueued):
    world = world_build()
    user = user_build(kind, world)
    headers, slug = bearer(user), f"{policy}-model"
    expected = expected_api_refusal(policy, kind)
    listed = [m["id"] for m in client.get("/v1/models", **headers).json()["data"]]
    assert (slug in listed) is (expected is None)
    described = client.get(f"/v1/models/{slug}", **headers)
    if expected is None:
        assert described.status_code == 200 and described.json()["id"] == slug
        return
    assert described.status_code == 403
    body = {"model": slug, "messages": [{"role": "user", "content": "Hi"}]}
    for path, data in (("/v1/models/" + slug, None), ("/v1/chat/completions", body)):
        response = (
            client.get(path, **headers)
            if data is None
            else client.post(path, data, content_type="application/json", **headers)
        )
        error = response.json()["error"]
        assert response.status_code == 403 and error["code"] == "model_access_denied"
        sentence = error["message"]
        assert refusal_matches(sentence[: len(expected)], expected), sentence
        if policy == "gated":
            assert f"http://testserver/gates/{world.gate.slug}/" in sentence
    assert not Generation.objects.exists()


def test_an_anonymous_caller_has_no_token_and_is_a_401(client):
    world_build()
    for path in ("/v1/models", "/v1/models/public-model"):
        assert client.get(path).status_code == 401
    response = client.post(
        "/v1/chat/completions",
        {"model": "public-model", "messages": [{"role": "user", "content": "Hi"}]},
        content_type="application/json",
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == "missing_api_key"
