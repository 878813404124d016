"""A real browser while Redis restarts empty mid-reply: the page reconnects and resyncs
on its own, and shows exactly the text that was saved."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.factories import ConversationFactory, UserFactory
from tests.faults import FaultStack, fault_stack, signed_in_context
from tests.inference_server import directive
from tests.test_browser import browser  # noqa: F401 - the fixture
from webapp.generations.models import Generation, Status

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.fault,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(scope="module")
def stack(django_db_setup: None) -> Iterator[FaultStack]:
    stack = fault_stack("browser-fault")
    yield stack
    stack.stop()


def test_the_page_resyncs_by_itself_after_redis_restarts_mid_reply(
    browser,  # noqa: F811
    stack,
    inference,
    openai_model,
):
    user = UserFactory()
    conversation = ConversationFactory(user=user, model=openai_model)
    context = signed_in_context(browser, user, stack.web_url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{stack.web_url}/c/{conversation.pk}/")

    page.fill("#composer-input", "Count " + directive(n_tokens=60, rate=20))  # 3 s
    page.click("#send-button")
    reply = page.locator(".message[data-role=assistant]").last
    expect(reply.locator(".message-content")).to_contain_text("tok5")
    stack.redis.kill()
    page.wait_for_timeout(700)
    stack.redis.start()

    expect(reply).to_have_attribute("data-status", "done", timeout=20_000)
    saved = Generation.objects.get(chat_message__conversation=conversation)
    assert saved.status == Status.DONE
    shown = reply.locator(".message-content").inner_text().split()
    assert shown == saved.text.split() and shown[-1] == "tok59"
    context.close()
