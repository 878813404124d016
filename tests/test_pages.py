"""The pages a signed-in user sees, and the probes operators use."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from tests.factories import (
    PASSWORD,
    ConversationFactory,
    LanguageModelFactory,
    MessageFactory,
    UserFactory,
    reply_factory,
)
from webapp.chat.models import Conversation

pytestmark = pytest.mark.django_db


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_home_lists_the_models_the_user_may_use_and_hides_the_rest(client, member):
    LanguageModelFactory(display_name="Open Model", access_policy="registered")
    LanguageModelFactory(display_name="Gated Model", access_policy="gated")
    page = client.get("/").content.decode()
    assert "Open Model" in page
    assert "Gated Model" not in page


def test_starting_a_chat_saves_the_message_and_opens_the_conversation(
    client, member, django_capture_on_commit_callbacks
):
    model = LanguageModelFactory(access_policy="registered")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post("/c/new", {"model": model.slug, "content": "What is a llama?"})
    conversation = Conversation.objects.get(user=member)
    assert response.status_code == 302 and response["Location"] == conversation.get_absolute_url()
    assert conversation.title == "What is a llama?"
    roles = [(m.role, m.status) for m in conversation.messages.order_by("role")]
    assert roles == [("assistant", "queued"), ("user", "done")]
    assert len(callbacks) == 1  # the generation task is enqueued once the row is committed


@pytest.mark.parametrize("policy", ["gated", "private"])
def test_starting_a_chat_with_a_model_one_may_not_use_is_refused(client, member, policy):
    model = LanguageModelFactory(access_policy=policy)
    response = client.post("/c/new", {"model": model.slug, "content": "Hello"})
    assert response.status_code == 400
    assert not Conversation.objects.exists()


def test_starting_a_chat_without_a_message_is_refused(client, member):
    model = LanguageModelFactory()
    response = client.post("/c/new", {"model": model.slug, "content": "   "})
    assert response.status_code == 400
    assert not Conversation.objects.exists()


def test_the_start_form_needs_a_csrf_token(member):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    model = LanguageModelFactory()
    assert strict.post("/c/new", {"model": model.slug, "content": "Hi"}).status_code == 403


def test_a_conversation_shows_its_history_with_model_output_escaped(client, member):
    conversation = ConversationFactory(user=member, title="Scripts")
    question = MessageFactory(conversation=conversation, content="Show me <b>bold</b>")
    reply_factory(
        conversation=conversation,
        parent=question,
        text='Here: <script>alert("x")</script> **done** <img src=x onerror=alert(1)>',
    )
    page = client.get(conversation.get_absolute_url()).content.decode()
    assert "<strong>done</strong>" in page
    assert '<script>alert("x")' not in page
    assert not re.search(r"<[^>]*onerror", page)
    assert "Scripts" in page


def test_sidebar_lists_conversations_newest_first(client, member):
    older = ConversationFactory(user=member, title="Older chat")
    newer = ConversationFactory(user=member, title="Newer chat")
    Conversation.objects.filter(pk=older.pk).update(updated_at=newer.updated_at.replace(year=2020))
    page = client.get("/").content.decode()
    assert page.index("Newer chat") < page.index("Older chat")


def test_someone_elses_conversation_is_not_found(client, member):
    other = ConversationFactory(title="Not yours")
    assert client.get(other.get_absolute_url()).status_code == 404


def test_model_card_renders_markdown_safely(client, member):
    model = LanguageModelFactory(
        description="# Card\n<script>bad()</script>[x](javascript:alert(1))"
    )
    page = client.get(model.get_absolute_url()).content.decode()
    assert "<h1>Card</h1>" in page
    assert "<script>bad()" not in page
    assert not re.search(r"href=.javascript:", page)


def test_healthz_answers_without_dependencies(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_each_dependency(client, inference):
    from tests.factories import ModelEndpointFactory

    assert client.get("/readyz").status_code == 503  # no model server yet
    ModelEndpointFactory(model=LanguageModelFactory(backend="tgi"), url=inference.url)
    deadline = time.monotonic() + 5  # the backend check is probed in the background
    while not (body := client.get("/readyz").json())["checks"]["backend"]:
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    assert body == {"status": "ok", "checks": {"database": True, "redis": True, "backend": True}}


def test_production_settings_pass_the_deployment_checks():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webapp.settings.production",
        "SECRET_KEY": "x" * 64 + "-production-only-test-key-" + "y" * 16,
        "ALLOWED_HOSTS": "gatehouse.example.org",
        "DATABASE_URL": "sqlite:///:memory:",
        "EMAIL_URL": "smtp+tls://mailer:secret@mail.example.org:587",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def _manage_check(**settings: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DEBUG")
    }
    env.update(DATABASE_URL="sqlite:///:memory:", **settings)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True, check=False
    )


def test_without_a_settings_module_the_production_settings_apply_and_need_a_key():
    result = _manage_check()
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_the_development_settings_refuse_the_published_key_with_debug_off():
    refused = _manage_check(DJANGO_SETTINGS_MODULE="webapp.settings.dev", DEBUG="0")
    assert refused.returncode != 0 and "development key" in refused.stderr
    allowed = _manage_check(DJANGO_SETTINGS_MODULE="webapp.settings.dev", DEBUG="1")
    assert allowed.returncode == 0, allowed.stderr
    keyed = _manage_check(
        DJANGO_SETTINGS_MODULE="webapp.settings.dev", DEBUG="0", SECRET_KEY="s" * 50
    )
    assert keyed.returncode == 0, keyed.stderr


def test_every_page_forbids_inline_script_and_unused_browser_features(client, member):
    conversation = ConversationFactory(user=member)
    for url in ["/", f"/c/{conversation.pk}/", "/accounts/login/", "/models/"]:
        response = client.get(url, follow=True)
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert "camera=()" in response.headers["Permissions-Policy"]
        inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", response.text)
        assert inline == [], url


def test_the_admin_signs_in_through_the_rate_limited_login(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    assert client.get("/admin/login/").url.startswith("/accounts/login/")
    for _ in range(12):
        client.post("/admin/login/", {"username": staff.email, "password": "wrong"})
        client.post("/accounts/login/", {"login": staff.email, "password": "wrong"})
    response = client.post("/accounts/login/", {"login": staff.email, "password": PASSWORD})
    assert "Too many failed login attempts" in response.text  # even the right password
    assert client.get("/admin/").status_code != 200
