"""What a person does in a real browser: sign up, verify, sign in, chat, reload."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "test-logs"


@pytest.fixture(scope="module")
def browser():
    """Chromium under Playwright's sync API, which keeps an event loop running in this thread:
    the ORM calls of these tests are still synchronous, so Django's async guard is lifted here."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield from _chromium()


def _chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(20_000)
    refused: list[str] = []  # what the Content-Security-Policy blocked on our own pages
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    context.close()
    assert refused == []


def sign_up_and_verify(page: Page, site, email: str) -> None:
    page.goto(f"{site.url}/accounts/signup/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/accounts/confirm-email/"))
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+", site.last_mail()).group(0)
    page.goto(link)
    page.click("form button[type=submit]")  # confirming is a POST, never a GET side effect


def sign_in(page: Page, site, email: str) -> None:
    page.goto(f"{site.url}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    expect(page.locator("#start-form")).to_be_visible()


def start_chat_as_a_member(page: Page, site, model, prompt: str) -> None:
    """Sign in as a new verified member and start a chat with ``model``."""
    user = UserFactory()
    user.emailaddress_set.create(email=user.email, verified=True, primary=True)
    sign_in(page, site, user.email)
    page.check(f".model-card[data-slug='{model.slug}'] input[name=model]")
    page.fill("#start-input", prompt)
    page.click("#start-button")
    expect(page).to_have_url(re.compile(r"/c/[0-9a-f-]+/$"))


def test_sign_up_chat_with_the_local_model_and_find_the_reply_after_a_reload(
    page, live_site, worker, bundled_model
):
    sign_up_and_verify(page, live_site, "newcomer@example.org")
    page.click("#sign-out")
    sign_in(page, live_site, "newcomer@example.org")

    page.check(f".model-card[data-slug='{bundled_model.slug}'] input[name=model]")
    page.fill("#start-input", "Write one sentence about llamas.")
    page.click("#start-button")
    expect(page).to_have_url(re.compile(r"/c/[0-9a-f-]+/$"))

    reply = page.locator(".message[data-role=assistant]").last
    content = reply.locator(".message-content")
    # Text appears while the reply is still streaming, not all at once at the end.
    page.wait_for_function(
        """() => {
            const m = [...document.querySelectorAll('.message[data-role=assistant]')].pop();
            return m && m.dataset.status === 'streaming'
                && m.querySelector('.message-content').textContent.trim().length > 0;
        }"""
    )
    expect(reply).to_have_attribute("data-status", "done", timeout=60_000)
    final_text = content.inner_text().strip()
    assert len(final_text.split()) >= 3
    page.screenshot(path=str(SCREENSHOTS / "chat.png"))

    page.reload()
    expect(page.locator("#conversation-list")).to_contain_text("Write one sentence about llamas.")
    reloaded = page.locator(".message[data-role=assistant]").last
    expect(reloaded).to_have_attribute("data-status", "done")
    assert reloaded.locator(".message-content").inner_text().strip() == final_text


def test_stop_in_the_browser_keeps_the_partial_reply(
    page, live_site, worker, inference, openai_model
):
    inference.push({"n_tokens": 400, "rate": 20})
    start_chat_as_a_member(page, live_site, openai_model, "Count slowly")
    reply = page.locator(".message[data-role=assistant]").last
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(reply.locator(".message-content")).to_contain_text("tok2")
    page.click("#stop-button")
    expect(reply).to_have_attribute("data-status", "stopped", timeout=3_000)
    assert inference.wait_for_disconnect(timeout=3)
    expect(page.locator("#send-button")).to_be_enabled()

    page.reload()
    expect(page.locator(".message[data-role=assistant]").last).to_have_attribute(
        "data-status", "stopped"
    )
    expect(page.locator(".message[data-role=assistant] .message-content").last).to_contain_text(
        "tok2"
    )


def test_model_output_cannot_run_script_in_the_page(
    page, live_site, worker, inference, openai_model
):
    hostile = [
        "Look: ",
        '<img src=x onerror="window.pwned=1">',
        " <script>window.pwned=2</script> ",
        "[click](javascript:window.pwned=3) ",
        "**bold**",
    ]
    inference.push({"tokens": hostile, "rate": 50})
    start_chat_as_a_member(page, live_site, openai_model, "Say something nasty")
    reply = page.locator(".message[data-role=assistant]").last
    expect(reply).to_have_attribute("data-status", "done")
    for _ in range(2):  # streamed and rendered in the browser, then rendered by the server
        content = page.locator(".message[data-role=assistant] .message-content").last
        expect(content.locator("strong")).to_have_text("bold")
        assert content.locator("img, script, a[href^='javascript']").count() == 0
        if content.get_by_text("click").count():
            content.get_by_text("click").click()
        page.wait_for_timeout(200)  # give an onerror handler its chance to run
        assert page.evaluate("window.pwned") is None
        page.reload()
        expect(page.locator(".message[data-role=assistant]").last).to_have_attribute(
            "data-status", "done"
        )


def test_a_replys_details_show_how_it_was_made_and_regenerate_with_the_same_settings(
    page, live_site, worker, inference, openai_model
):
    inference.push({"tokens": ["First", " take"], "rate": 50}, {"tokens": ["Second", " take"]})
    start_chat_as_a_member(page, live_site, openai_model, "Tell me twice")
    reply = page.locator(".message[data-role=assistant]").last
    expect(reply).to_have_attribute("data-status", "done")
    expect(reply.locator(".message-stats")).to_contain_text("tokens")  # rendered by reply.js

    reply.locator(".details-button").click()
    details = reply.locator(".message-details")
    expect(details).to_be_visible()
    expect(details.locator(".details-list")).to_contain_text('"temperature":0.7')
    expect(details.locator(".details-list")).to_contain_text(inference.url)
    expect(details.locator(".details-list")).to_contain_text("scripted/")
    details.locator("summary").click()
    expect(details.locator(".details-input-text")).to_contain_text("Tell me twice")
    page.screenshot(path=str(SCREENSHOTS / "details.png"))

    details.locator(".regenerate-same-button").click()
    second = page.locator(".message[data-role=assistant]").last
    expect(second.locator(".message-content")).to_have_text("Second take")
    expect(second).to_have_attribute("data-status", "done")
    assert page.locator(".message[data-role=assistant]").count() == 1  # the newer branch shows
    requests = inference.requests(path="/v1/chat/completions")
    first_body, second_body = requests[-2]["body"], requests[-1]["body"]
    assert first_body["messages"] == second_body["messages"]
    assert first_body["temperature"] == second_body["temperature"] == 0.7


def test_an_older_replys_stats_show_on_hover_and_the_newest_ones_always(
    page, live_site, worker, inference, openai_model
):
    inference.push({"tokens": ["One"], "rate": 50}, {"tokens": ["Two"], "rate": 50})
    start_chat_as_a_member(page, live_site, openai_model, "First")
    replies = page.locator(".message[data-role=assistant]")
    expect(replies.last).to_have_attribute("data-status", "done")
    page.fill("#composer-input", "Second")
    expect(page.locator("#send-button")).to_be_enabled()
    page.click("#send-button")
    expect(replies).to_have_count(2)
    expect(replies.last).to_have_attribute("data-status", "done")

    older, newest = replies.first.locator(".message-stats"), replies.last.locator(".message-stats")
    expect(newest.get_by_text("tokens", exact=False)).to_be_visible()
    expect(older.get_by_text("tokens", exact=False)).to_be_hidden()
    replies.first.hover()
    expect(older.get_by_text("tokens", exact=False)).to_be_visible()


def test_a_reply_waiting_for_a_busy_model_shows_its_place_in_the_queue_then_streams(
    page, live_site, worker, inference, openai_model
):
    from django.db import transaction

    from webapp.generations.services import generation_create, generation_stop

    openai_model.endpoints.update(max_concurrent=1)
    inference.push({"n_tokens": 1000, "rate": 20})  # someone else's reply holds the one slot
    someone = UserFactory()
    with transaction.atomic():
        blocker = generation_create(
            user=someone,
            model=openai_model,
            origin="api",
            messages=[{"role": "user", "content": "take your time"}],
        )
    start_chat_as_a_member(page, live_site, openai_model, "Am I next?")
    reply = page.locator(".message[data-role=assistant]").last
    expect(reply.locator(".status-badge")).to_have_text("Queued — position 1")
    generation_stop(user=someone, generation_id=blocker.pk)  # the slot comes free
    expect(reply).to_have_attribute("data-status", "done", timeout=15_000)
    expect(reply.locator(".status-badge")).to_have_text("")
