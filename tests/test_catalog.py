"""Staff define models in the admin or a YAML file; one rule decides who may use them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
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


def test_an_environment_variable_in_the_file_is_only_ever_a_string(models_file, monkeypatch):
    # Substituted before parsing, this would have made vicuna's key a new field of the model.
    monkeypatch.setenv("TEST_TGI_KEY", "k\n    access_policy: public")
    call_command("load_models", str(models_file))

    llama = LanguageModel.objects.get(slug="llama-7b")
    assert llama.access_policy == "gated"
    key = ModelEndpoint.objects.get(model=llama, url="http://tgi-1:8080").api_key
    assert key == "k\n    access_policy: public"


def test_the_file_sets_an_endpoints_capacity_and_a_file_without_it_keeps_the_admins(models_file):
    with_capacity = YAML.replace(
        "      - http://tgi-2:8080\n", "      - {url: http://tgi-2:8080, max_concurrent: 4}\n"
    )
    models_file.write_text(with_capacity)
    call_command("load_models", str(models_file))
    endpoint = ModelEndpoint.objects.get(url="http://tgi-2:8080")
    assert endpoint.max_concurrent == 4

    ModelEndpoint.objects.filter(pk=endpoint.pk).update(max_concurrent=6)  # set in the admin
    models_file.write_text(YAML)
    call_command("load_models", str(models_file))
    endpoint.refresh_from_db()
    assert endpoint.max_concurrent == 6

    models_file.write_text(with_capacity.replace("max_concurrent: 4", "max_concurrent: lots"))
    with pytest.raises(CommandError, match=r"endpoints\[1\]\.max_concurrent: "):
        call_command("load_models", str(models_file))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("backend: tgi", "backend: grpc"), "llama-7b: backend: must be one of"),
        (("top_p: 0.95", "top_p: 1.0"), "top_p must be greater than 0 and less than 1"),
        (("access_policy: public", "access_policy: everyone"), "access_policy: must be one of"),
        (("endpoints: [http://vllm:8000/v1]", "endpoints: [ftp://x]"), r"endpoints\[0\]\.url: "),
        (
            ("endpoints: [http://vllm:8000/v1]", "endpoints: [http://me:pw@vllm:8000/v1]"),
            r"endpoints\[0\]\.url: Leave credentials out of the URL",
        ),
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


SECRET = "sk-live-2f9c41d07be6a8e3"


def staff_with(*codenames: str):
    user = UserFactory(is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="catalog", codename__in=codenames)
    )
    return user


def admin_pages(endpoint: ModelEndpoint) -> list[str]:
    model = f"/admin/catalog/languagemodel/{endpoint.model.pk}"
    own = f"/admin/catalog/modelendpoint/{endpoint.pk}"
    return [
        "/admin/",
        "/admin/catalog/",
        "/admin/catalog/languagemodel/",
        f"{model}/change/",
        f"{model}/history/",
        f"{model}/delete/",
        "/admin/catalog/modelendpoint/",
        f"{own}/change/",
        f"{own}/history/",
    ]


@pytest.mark.parametrize(
    "permissions",
    [
        ("view_languagemodel", "view_modelendpoint"),
        ("change_languagemodel", "view_modelendpoint"),
        ("change_languagemodel", "change_modelendpoint", "add_modelendpoint"),
    ],
    ids=["view-only", "change-model-view-endpoint", "change"],
)
def test_no_admin_page_shows_an_endpoints_api_key_whatever_the_staff_may_do(client, permissions):
    endpoint = ModelEndpointFactory(api_key=SECRET)
    ModelEndpointFactory(model=endpoint.model, url="http://127.0.0.1:10/")  # one without a key
    client.force_login(staff_with(*permissions))

    for path in admin_pages(endpoint):
        page = client.get(path)
        assert page.status_code in (200, 403, 404), path
        assert SECRET not in page.content.decode(), path
        assert SECRET[4:] not in page.content.decode(), path

    page = client.get(f"/admin/catalog/languagemodel/{endpoint.model.pk}/change/").content.decode()
    assert ">set<" in page and ">not set<" in page  # whether a key is set, and nothing more


def change_form(endpoint: ModelEndpoint, **changes: str) -> dict:
    form = {
        "slug": endpoint.model.slug,
        "display_name": endpoint.model.display_name,
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
    return form | changes


def test_staff_who_may_change_endpoints_set_a_new_key_that_no_page_shows_afterwards(client):
    endpoint = ModelEndpointFactory(api_key="sk-old-7d1e0f5a93c2")
    client.force_login(
        staff_with("change_languagemodel", "view_languagemodel", "change_modelendpoint")
    )
    url = f"/admin/catalog/languagemodel/{endpoint.model.pk}/change/"

    refused = client.post(
        url,
        change_form(endpoint, **{"endpoints-0-api_key": SECRET})
        | {"default_params": '{"top_p": 7}'},
    )
    assert refused.status_code == 200  # the form comes back with its error...
    assert SECRET not in refused.content.decode()  # ...without the key that was typed
    endpoint.refresh_from_db()
    assert endpoint.api_key == "sk-old-7d1e0f5a93c2"

    saved = client.post(url, change_form(endpoint, **{"endpoints-0-api_key": SECRET}))
    assert saved.status_code == 302, saved.content[:2000]
    endpoint.refresh_from_db()
    assert endpoint.api_key == SECRET
    for path in admin_pages(endpoint):
        content = client.get(path).content.decode()
        assert SECRET not in content and "sk-old-7d1e0f5a93c2" not in content, path


def test_the_admin_can_remove_a_stored_key(client):
    endpoint = ModelEndpointFactory(api_key=SECRET)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = f"/admin/catalog/languagemodel/{endpoint.model.pk}/change/"
    response = client.post(url, change_form(endpoint, **{"endpoints-0-clear_api_key": "on"}))
    assert response.status_code == 302, response.content[:2000]
    endpoint.refresh_from_db()
    assert endpoint.api_key == ""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("licence_url: https://example.org/licence", "licence_url: javascript:alert(1)"),
            "llama-7b: licence_url: Enter a valid URL",
        ),
        (
            ("licence_url: https://example.org/licence", "licence_url: ftp://example.org/l"),
            "llama-7b: licence_url: Enter a valid URL",
        ),
        (("LLaMA 7B", "L" * 201), "llama-7b: display_name: Ensure this value has at most 200"),
        (("context_length: 2048", "context_length: lots"), "llama-7b: context_length: "),
        (("context_length: 2048", "context_length: -5"), "llama-7b: context_length: "),
        (("backend: openai", "backend: grpc"), "vicuna: backend: must be one of tgi, openai"),
        (
            ("api_key: ${TEST_TGI_KEY}", "api_key: " + "k" * 501),
            "llama-7b: endpoints[0].api_key: Ensure this value has at most 500",
        ),
        (("api_key: ${TEST_TGI_KEY}", "token: x"), "llama-7b: endpoints[0]: unknown field"),
        (("      - http://tgi-2:8080", "      - 42"), "llama-7b: endpoints[1]: "),
        (("      - http://tgi-2:8080", "      - http://tgi-1:8080"), "endpoints[1].url: "),
        (("slug: vicuna", "slug: llama-7b"), "llama-7b: slug: appears more than once"),
        (
            (
                "default_params: {max_new_tokens: 256, temperature: 0.7, top_p: 0.95}",
                "default_params: [1]",
            ),
            "llama-7b: default_params: must be a mapping",
        ),
    ],
)
def test_the_loader_validates_every_field_as_the_admin_does(models_file, change, message):
    models_file.write_text(YAML.replace(*change))
    with pytest.raises(CommandError) as refused:
        call_command("load_models", str(models_file))
    assert str(refused.value).count(message) == 1
    assert LanguageModel.objects.count() == 0 and ModelEndpoint.objects.count() == 0


def test_the_loader_reports_every_error_and_changes_nothing(models_file):
    call_command("load_models", str(models_file))
    before = list(LanguageModel.objects.values().order_by("slug"))
    endpoints_before = list(ModelEndpoint.objects.values().order_by("url"))

    models_file.write_text(
        YAML.replace("LLaMA 7B", "LLaMA 7B (v2)")  # a valid change, first in the file
        .replace("context_length: 2048", "context_length: lots")
        .replace("access_policy: public", "access_policy: everyone")
        .replace("endpoints: [http://vllm:8000/v1]", "endpoints: [http://vllm:8000/v1, 'ftp://x']")
    )
    with pytest.raises(CommandError) as refused:
        call_command("load_models", str(models_file))

    message = str(refused.value)
    assert "llama-7b: context_length: " in message
    assert "vicuna: access_policy: must be one of" in message
    assert "vicuna: endpoints[1].url: " in message
    assert list(LanguageModel.objects.values().order_by("slug")) == before
    assert list(ModelEndpoint.objects.values().order_by("url")) == endpoints_before


def test_loading_the_same_valid_file_twice_changes_nothing_the_second_time(models_file):
    call_command("load_models", str(models_file))
    models = list(LanguageModel.objects.values("slug", "display_name", "licence_url"))
    endpoints = list(ModelEndpoint.objects.values_list("url", "api_key", "is_active"))
    call_command("load_models", str(models_file))
    assert list(LanguageModel.objects.values("slug", "display_name", "licence_url")) == models
    assert list(ModelEndpoint.objects.values_list("url", "api_key", "is_active")) == endpoints


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)", "data:,x"]
)
def test_the_model_page_never_links_a_licence_url_that_is_not_http(client, url):
    model = LanguageModelFactory(access_policy="public", licence_name="Odd", licence_url=url)
    page = client.get(model.get_absolute_url()).content.decode()
    licence = page.split("Licence:")[1].split("</span>")[0]
    assert "Odd" in licence
    assert "<a" not in licence and "href" not in licence


def test_the_model_page_links_an_https_licence_url(client):
    model = LanguageModelFactory(
        access_policy="public", licence_name="Apache", licence_url="https://example.org/licence"
    )
    page = client.get(model.get_absolute_url()).content.decode()
    assert '<a href="https://example.org/licence"' in page


def test_the_admin_refuses_a_licence_url_that_is_not_http(client):
    endpoint = ModelEndpointFactory()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = f"/admin/catalog/languagemodel/{endpoint.model.pk}/change/"
    for licence_url in ["javascript:alert(1)", "ftp://example.org/licence"]:
        response = client.post(url, change_form(endpoint, licence_url=licence_url))
        assert response.status_code == 200
        assert "Enter a valid URL" in response.content.decode()
    endpoint.model.refresh_from_db()
    assert endpoint.model.licence_url == ""


def test_saving_without_typing_a_key_does_not_record_a_key_change(client):
    from django.contrib.admin.models import LogEntry

    endpoint = ModelEndpointFactory(api_key=SECRET)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = f"/admin/catalog/languagemodel/{endpoint.model.pk}/change/"
    client.post(url, change_form(endpoint, display_name="Renamed"))
    client.post(url, change_form(endpoint, **{"endpoints-0-api_key": "sk-new-one"}))
    first, second = LogEntry.objects.order_by("action_time")
    assert "API key" not in first.get_change_message()
    assert "New API key" in second.get_change_message()
