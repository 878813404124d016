"""In a real browser: a compare of three models streams into three columns at once, a second
turn goes to all of them, the session reopens from the sidebar, and "continue with this one"
makes an ordinary conversation of one column."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import LanguageModelFactory, ModelEndpointFactory, UserFactory
from tests.test_browser import SCREENSHOTS, browser, page, sign_in  # noqa: F401
from webapp.arena.compare.models import CompareSession
from webapp.chat.models import Conversation

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Four seconds at 15 tokens/s: room for a reload while all three are still streaming.
TOKENS = [f" w{i}" for i in range(60)]
ALL_STREAMING = """() => {
    const replies = [...document.querySelectorAll('.compare-column')]
        .map((c) => [...c.querySelectorAll('.message[data-role=assistant]')].pop());
    return replies.length === 3 && replies.every((r) => r && r.dataset.status === 'streaming'
        && r.querySelector('.message-content').textContent.trim().length > 0);
}"""


def test_three_models_stream_side_by_side_then_a_second_turn_then_continue_with_one(
    page,  # noqa: F811
    live_site,
    worker,
    inference,
):
    slugs = ["north", "south", "east"]
    for slug in slugs:
        model = LanguageModelFactory(slug=slug, backend="openai")
        ModelEndpointFactory(model=model, url=inference.url)
    inference.set_default({"tokens": TOKENS, "rate": 15})
    user = UserFactory()
    user.emailaddress_set.create(email=user.email, verified=True, primary=True)
    sign_in(page, live_site, user.email)

    page.goto(f"{live_site.url}/compare/")
    for slug in slugs:
        page.check(f".model-card[data-slug='{slug}'] input[name=model]")
    page.fill("#compare-input", "Count the <b>words</b>")
    page.click("#compare-start")
    expect(page).to_have_url(re.compile(r"/compare/[0-9a-f-]+/$"))

    columns = page.locator(".compare-column")
    expect(columns).to_have_count(3)
    page.wait_for_function(ALL_STREAMING)  # the three replies stream at the same time
    page.reload()  # reopened mid-stream, every column resumes where it is
    page.wait_for_function(ALL_STREAMING)
    for index in range(3):
        reply = columns.nth(index).locator(".message[data-role=assistant]").last
        expect(reply).to_have_attribute("data-status", "done", timeout=20_000)
        # Exactly once: nothing lost or repeated across the reload.
        expect(reply.locator(".message-content")).to_have_text("".join(TOKENS).strip())
        expect(reply.locator(".message-stats")).to_contain_text("tokens")
    page.screenshot(path=str(SCREENSHOTS / "compare.png"))
    # The prompt is shown as text, not as markup.
    expect(columns.first.locator(".message[data-role=user]")).to_have_text("Count the <b>words</b>")

    inference.set_default({"tokens": [" again", " <img src=x onerror=alert(1)>"], "rate": 20})
    page.fill("#composer-input", "Once more")
    page.press("#composer-input", "Enter")
    for index in range(3):
        column = columns.nth(index)
        expect(column.locator(".message[data-role=user]")).to_have_count(2)
        reply = column.locator(".message[data-role=assistant]").last
        expect(reply).to_have_attribute("data-status", "done", timeout=20_000)
        # Model output is escaped as on the chat page: the markup shows as text.
        expect(reply.locator(".message-content")).to_have_text("again <img src=x onerror=alert(1)>")
        expect(reply.locator(".message-content img")).to_have_count(0)

    # The session is listed with the conversations and reopens as it was.
    session = CompareSession.objects.get()
    page.goto(f"{live_site.url}/")
    page.click(f"#compare-list a[href='/compare/{session.pk}/']")
    expect(columns.nth(1).locator(".message[data-role=assistant]")).to_have_count(2)

    chosen = columns.nth(1).locator(".compare-column-model").inner_text()
    columns.nth(1).locator(".column-continue").click()
    expect(page).to_have_url(re.compile(r"/c/[0-9a-f-]+/$"))
    conversation = Conversation.objects.get()
    assert conversation.model.display_name == chosen
    messages = page.locator("#messages .message .message-content")
    expect(messages).to_have_count(4)
    expect(messages.nth(3)).to_have_text("again <img src=x onerror=alert(1)>")
    expect(page.locator("#messages img")).to_have_count(0)
    expect(page.locator("#chat-model")).to_have_text(conversation.model.display_name)
