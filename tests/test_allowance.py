"""A signed-in user sees their limits and what is left of each now, on the account's Limits
page and as JSON; the chat pages link there where a limit refuses a send."""

from __future__ import annotations

import html
import re
import time

import pytest

from tests.factories import ConversationFactory, LanguageModelFactory, UserFactory
from tests.inference_server import directive
from webapp.chat.services import message_send
from webapp.generations.models import Generation, Status
from webapp.generations.services import generation_stop

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def limits(settings):
    settings.GENERATION_LIMITS = {
        **settings.GENERATION_LIMITS,
        "CONCURRENT": 2,
        "PER_MINUTE": 20,
        "TOKENS_PER_DAY": 10_000,
        "SOCKETS": 20,
        "MODELS": {"scripted-openai": {"TOKENS_PER_DAY": 5_000}},
    }


def row(page: str, selector: str) -> str:
    """The text of the table row with this id or data-model, as a person reads it."""
    match = re.search(rf"<tr {selector}[^>]*>(.*?)</tr>", page, re.S)
    assert match, f"no row {selector}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def wait_for(generation_id, statuses, timeout: float = 10.0) -> Generation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        generation = Generation.objects.get(pk=generation_id)
        if generation.status in statuses:
            return generation
        time.sleep(0.05)
    raise AssertionError(f"generation {generation_id} is still {generation.status}")


def a_fresh_minute() -> None:
    """Start the replies early in a minute, so that all of them count in the same one."""
    left = 60 - time.time() % 60
    if left < 20:
        time.sleep(left + 0.1)


def test_the_limits_page_shows_what_is_used_and_left_after_a_few_replies(
    client, worker, inference, openai_model, limits
):
    other = LanguageModelFactory(slug="unused-model", display_name="Unused Model")
    user = UserFactory()
    client.force_login(user)
    conversation = ConversationFactory(user=user, model=openai_model)
    a_fresh_minute()
    finished = []
    for turn in range(2):
        sent = message_send(
            user=user, conversation_id=conversation.pk, content=f"{turn} {directive(n_tokens=7)}"
        )
        finished.append(wait_for(sent.assistant_message.generation_id, {Status.DONE}))
    slow = message_send(
        user=user, conversation_id=conversation.pk, content=directive(n_tokens=500, rate=5)
    )
    slow_id = slow.assistant_message.generation_id
    spent = sum(g.prompt_tokens + g.generated_tokens for g in finished)
    assert all(g.generated_tokens == 7 for g in finished) and spent < 5_000
    try:
        wait_for(slow_id, {Status.STREAMING})
        response = client.get("/accounts/limits/")
        assert response.status_code == 200
        page = response.content.decode()
        assert (
            row(page, 'id="limit-running"') == "Replies running at once 1 of 2 1 as each one ends"
        )
        assert row(page, 'id="limit-this-minute"').startswith(
            "Replies started this minute 3 of 20 17 at "
        )
        assert row(page, 'id="limit-sockets"') == "Chat tabs open 0 of 20 20 as you close one"
        assert row(page, 'data-model="scripted-openai"') == (
            f"{openai_model.display_name} {spent:,} {5_000 - spent:,} 5,000"
        )
        assert row(page, 'data-model="unused-model"') == "Unused Model 0 10,000 10,000"
        assert "Budgets reset at midnight UTC" in " ".join(page.split())

        data = client.get("/accounts/limits.json").json()
        assert data["running"] == {"used": 1, "limit": 2, "left": 1}
        assert data["this_minute"]["used"] == 3 and data["this_minute"]["left"] == 17
        assert 0 < data["this_minute"]["resets_in"] <= 61
        tokens = data["tokens_today"]["models"]
        assert tokens["scripted-openai"]["used"] == spent
        assert tokens["scripted-openai"]["left"] == 5_000 - spent
        assert tokens["scripted-openai"]["resets_at"].endswith("T00:00:00+00:00")
        assert tokens[other.slug] == {**tokens[other.slug], "used": 0, "limit": 10_000}
        assert data["sockets"] == {"used": 0, "limit": 20, "left": 20}
    finally:
        generation_stop(user=user, generation_id=slow_id)
        wait_for(slow_id, {Status.STOPPED, Status.DONE, Status.FAILED})


def test_the_limits_page_and_its_json_need_a_signed_in_user(client):
    page = client.get("/accounts/limits/")
    assert page.status_code == 302 and "/accounts/login/" in page["Location"]
    refused = client.get("/accounts/limits.json")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthenticated"


def test_staff_see_that_they_have_no_limits(client, openai_model, limits):
    client.force_login(UserFactory(is_staff=True))
    page = client.get("/accounts/limits/").content.decode()
    assert "As staff you have no limits" in page
    assert row(page, 'id="limit-running"').startswith("Replies running at once 0 no limit")
    data = client.get("/accounts/limits.json").json()
    assert data["staff"] is True and data["running"]["limit"] is None
    assert data["tokens_today"]["models"]["scripted-openai"]["limit"] is None


def test_a_refused_start_links_to_the_limits_page_and_the_chat_page_has_the_link(
    client, unqueued, openai_model, limits
):
    user = UserFactory()
    client.force_login(user)
    for _ in range(2):
        assert (
            client.post("/c/new", {"model": openai_model.slug, "content": "go"}).status_code == 302
        )
    refused = client.post("/c/new", {"model": openai_model.slug, "content": "a third"})
    assert refused.status_code == 429
    page = refused.content.decode()
    assert "replies running" in page
    assert re.search(r'<a href="/accounts/limits/" id="start-limits">', page)

    # A conversation page: its notice carries the link, shown for a limit's refusal.
    chat_page = client.get(ConversationFactory(user=user, model=openai_model).get_absolute_url())
    assert re.search(
        r'id="notice-limits" href="/accounts/limits/" hidden', chat_page.content.decode()
    )


def test_the_account_pages_link_to_the_limits_page(client, user):
    client.force_login(user)
    page = client.get("/accounts/email/").content.decode()
    assert re.search(r'<a href="/accounts/limits/" id="nav-limits"', page)
