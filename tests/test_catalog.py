"""Staff define models in the admin or a YAML file; one rule decides who may use them."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from tests.factories import LanguageModelFactory, ModelEndpointFactory, UserFactory
from webapp.catalog.models import LanguageModel, ModelEndpoint
from webapp.catalog.policy import model_can_use
from webapp.catalog.selectors import model_list_usable

pytestmark = pytest.mark.django_db

YAML = """
models:
  - slug: llama-7b
    display_name: LLaMA 7B
    description: "# LLaMA\\nA *research* model."
    licence_name: LLaMA licence
    licence_url: https://example.org/licence
    backend: tgi
    context_length: 2048
    access_policy: gated
    default_params: {max_new_tokens: 256, temperature: 0.7, top_p: 0.95}
    endpoints:
      - url: http://tgi-1:8080
        api_key: ${TEST_TGI_KEY}
      - http://tgi-2:8080
  - slug: vicuna
    backend: openai
    access_policy: public
    endpoints: [http://vllm:8000/v1]
"""


@pytest.fixture
def models_file(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(YAML)
    return path


def test_load_models_creates_then_updates_without_duplicates(models_file, monkeypatch):
    monkeypatch.setenv("TEST_TGI_KEY", "s3cret")
    call_command("load_models", str(models_file))
    models_file.write_text(
        YAML.replace("LLaMA 7B", "LLaMA 7B (v2)").replace("      - http://tgi-2:8080\n", "")
    )
    call_command("load_models", str(models_file))

    assert LanguageModel.objects.count() == 2
    llama = LanguageModel.objects.get(slug="llama-7b")
    assert llama.display_name == "LLaMA 7B (v2)"
    assert llama.default_params["top_p"] == 0.95
    endpoints = {e.url: e for e in ModelEndpoint.objects.filter(model=llama)}
    assert endpoints["http://tgi-1:8080"].api_key == "s3cret"
    assert not endpoints["http://tgi-2:8080"].is_active  # dropped from the file: switched off
    assert LanguageModel.objects.get(slug="vicuna").display_name == "vicuna"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("backend: tgi", "backend: grpc"), "backend must be one of"),
        (("top_p: 0.95", "top_p: 1.0"), "top_p must be greater than 0 and less than 1"),
        (("access_policy: public", "access_policy: everyone"), "access_policy must be one of"),
        (("endpoints: [http://vllm:8000/v1]", "endpoints: [ftp://x]"), "is not valid"),
        (("slug: vicuna", "slug: Vicuna 13B"), "use lowercase letters"),
        (("models:", "modelz:"), "list of models"),
    ],
)
def test_a_bad_model_file_is_refused_whole_with_the_reason(models_file, change, message):
    models_file.write_text(YAML.replace(*change))
    with pytest.raises(CommandError, match=message):
        call_command("load_models", str(models_file))
    assert LanguageModel.objects.count() == 0


def test_unreadable_yaml_is_refused(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("models: [unclosed")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("load_models", str(path))


@pytest.mark.parametrize(
    ("policy", "anonymous", "member", "staff"),
    [
        ("public", False, True, True),
        ("registered", False, True, True),
        ("gated", False, False, True),
        ("private", False, False, True),
    ],
)
def test_one_rule_decides_who_may_chat_with_a_model(policy, anonymous, member, staff):
    from django.contrib.auth.models import AnonymousUser

    model = LanguageModelFactory(access_policy=policy)
    assert model_can_use(user=AnonymousUser(), model=model, action="chat") is anonymous
    assert model_can_use(user=UserFactory(), model=model, action="chat") is member
    assert model_can_use(user=UserFactory(is_staff=True), model=model, action="chat") is staff
    assert (model in model_list_usable(user=UserFactory())) is member


def test_an_inactive_model_is_usable_by_nobody():
    model = LanguageModelFactory(access_policy="public", is_active=False)
    assert not model_can_use(user=UserFactory(is_staff=True), model=model)


def test_the_admin_never_shows_an_endpoints_api_key_and_blank_keeps_it(client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    endpoint = ModelEndpointFactory(api_key="sk-very-secret-key")
    client.force_login(admin)
    page = client.get(f"/admin/catalog/languagemodel/{endpoint.model.pk}/change/")
    assert page.status_code == 200
    assert b"sk-very-secret-key" not in page.content

    form = {
        "slug": endpoint.model.slug,
        "display_name": "Renamed",
        "backend": "openai",
        "default_params": '{"max_new_tokens": 32}',
        "context_length": 4096,
        "access_policy": "registered",
        "is_active": "on",
        "position": 0,
        "endpoints-TOTAL_FORMS": 1,
        "endpoints-INITIAL_FORMS": 1,
        "endpoints-0-id": endpoint.pk,
        "endpoints-0-model": endpoint.model.pk,
        "endpoints-0-url": endpoint.url,
        "endpoints-0-api_key": "",
        "endpoints-0-is_active": "on",
    }
    response = client.post(f"/admin/catalog/languagemodel/{endpoint.model.pk}/change/", form)
    assert response.status_code == 302, response.content[:2000]
    endpoint.refresh_from_db()
    assert endpoint.api_key == "sk-very-secret-key"
    assert endpoint.model.display_name == "Renamed"
