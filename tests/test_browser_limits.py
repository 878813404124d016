"""In a real browser, a tab past the user's socket limit says why, links to the Limits page
and waits instead of reconnecting over and over; once another tab closes it connects."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.factories import ConversationFactory, UserFactory
from tests.faults import signed_in_context
from tests.services import Service, asgi_server, free_port
from tests.services import test_database_env as database_env
from tests.test_browser import browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def one_socket_site(django_db_setup: None) -> Iterator[str]:
    port = free_port()
    env = {**database_env(), "GENERATION_LIMIT_SOCKETS": "1"}
    server: Service = asgi_server(port, env=env, name="limits-web").start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_a_tab_past_the_socket_limit_says_why_and_does_not_hammer_reconnects(
    browser,  # noqa: F811
    one_socket_site,
    openai_model,
):
    user = UserFactory()
    conversation = ConversationFactory(user=user, model=openai_model)
    context = signed_in_context(browser, user, one_socket_site)
    url = f"{one_socket_site}/c/{conversation.pk}/"
    refused_csp: list[str] = []
    first = context.new_page()
    first.goto(url)
    expect(first.locator("#chat")).to_have_attribute("data-connected", "true")

    second = context.new_page()
    second.on(
        "console", lambda m: "Content Security Policy" in m.text and refused_csp.append(m.text)
    )
    sockets: list[str] = []
    second.on("websocket", lambda ws: sockets.append(ws.url))
    second.goto(url)
    notice = second.locator("#notice")
    expect(notice).to_be_visible()
    expect(notice).to_have_attribute("data-code", "too_many_sockets")
    expect(second.locator("#notice-text")).to_contain_text("You have 1 chat tab or window open")
    expect(second.locator("#notice-limits")).to_be_visible()
    expect(second.locator("#notice-limits")).to_have_attribute("href", "/accounts/limits/")
    expect(second.locator("#connection-status")).to_be_hidden()
    second.wait_for_timeout(4000)  # the usual backoff would have tried 3 more times by now
    assert len(sockets) == 1
    expect(second.locator("#chat")).to_have_attribute("data-connected", "false")

    first.close()  # its place is free; coming back online (or in 30 s) the tab connects
    second.wait_for_timeout(300)
    second.evaluate("window.dispatchEvent(new Event('online'))")
    expect(second.locator("#chat")).to_have_attribute("data-connected", "true")
    expect(notice).to_be_hidden()
    assert len(sockets) == 2 and refused_csp == []
    context.close()
