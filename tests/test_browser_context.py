"""In a real browser: a reply to a history too long for the model's context says which
messages it was not sent, at the point where the cut falls, live and after a reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.factories import LanguageModelFactory, ModelEndpointFactory, UserFactory
from tests.inference_server.tgi import MAX_TOTAL_TOKENS
from tests.test_browser import browser, page, sign_in  # noqa: F401
from tests.test_context_tokens import MAX_NEW_TOKENS, _dense_conversation

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NOTE = "The 4 messages above were left out of the last reply to fit the model's context."


def expect_the_cut_before_the_third_question(tab: Page) -> None:
    note = tab.locator("#messages .context-cut")
    expect(note).to_have_count(1)
    expect(note).to_have_text(NOTE)
    expect(tab.locator("#messages .context-cut + .message .message-content")).to_have_text(
        re.compile(r"^question2 ")
    )
    reply = tab.locator("#messages .message[data-role=assistant]").last
    expect(reply.locator(".message-stats")).to_contain_text(
        "4 earlier messages left out to fit the model's context"
    )


def test_the_page_marks_where_the_model_stopped_reading_a_long_conversation(
    page,  # noqa: F811
    live_site,
    worker,
    inference,
):
    user = UserFactory()
    user.emailaddress_set.create(email=user.email, verified=True, primary=True)
    model = LanguageModelFactory(
        slug="dense-tgi",
        backend="tgi",
        context_length=MAX_TOTAL_TOKENS,
        default_params={"max_new_tokens": MAX_NEW_TOKENS},
    )
    ModelEndpointFactory(model=model, url=inference.url)
    conversation = _dense_conversation(user, model, turns=5)
    inference.push({"tokens": [" The", " third", "."], "rate": 50})

    sign_in(page, live_site, user.email)
    page.goto(f"{live_site.url}{conversation.get_absolute_url()}")
    expect(page.locator("#messages .context-cut")).to_have_count(0)  # every reply saw it all
    page.fill("#composer-input", "Which one?")
    page.press("#composer-input", "Enter")
    reply = page.locator("#messages .message[data-role=assistant]").last
    expect(reply).to_have_attribute("data-status", "done")
    expect(reply.locator(".message-content")).to_have_text("The third.")
    expect_the_cut_before_the_third_question(page)  # from the done frame

    page.reload()
    expect(page.locator("#messages .message[data-role=assistant]").last).to_have_attribute(
        "data-status", "done"
    )
    expect_the_cut_before_the_third_question(page)  # from the saved generation
