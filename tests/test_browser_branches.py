"""In a real browser: edit an earlier message into a new branch, switch between the
branches with the 1/2 switcher, and find the branch last viewed after a reload."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.factories import LanguageModelFactory, ModelEndpointFactory
from tests.test_browser import SCREENSHOTS, browser, page, start_chat_as_a_member  # noqa: F401
from webapp.chat.models import Conversation

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def shown(tab: Page) -> list[str]:
    return [t.strip() for t in tab.locator("#messages .message .message-content").all_inner_texts()]


def wait_for_leaf(leaf_text: str, timeout: float = 5.0) -> None:
    """Wait until the server remembers the branch ending in the reply ``leaf_text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conversation = Conversation.objects.select_related("current_leaf__generation").get()
        if conversation.current_leaf and conversation.current_leaf.text == leaf_text:
            return
        time.sleep(0.05)
    raise AssertionError(f"the branch ending in {leaf_text!r} was not remembered")


def test_edit_makes_a_branch_and_a_reload_shows_the_branch_last_viewed(
    page,  # noqa: F811
    live_site,
    worker,
    inference,
    openai_model,
):
    inference.push(
        {"tokens": ["First", " answer"], "rate": 50},
        {"tokens": ["Edited", " answer"], "rate": 50},
    )
    start_chat_as_a_member(page, live_site, openai_model, "Original question")
    reply = page.locator("#messages .message[data-role=assistant]").last
    expect(reply).to_have_attribute("data-status", "done")
    expect(reply.locator(".message-model")).to_have_text(openai_model.display_name)
    expect(page.locator("#messages .message[data-role=user] .message-time")).not_to_be_empty()

    # ↑ in the empty composer edits the last message; Enter sends the edit.
    page.focus("#composer-input")
    page.keyboard.press("ArrowUp")
    field = page.locator("#messages .message[data-role=user] .message-edit-input")
    expect(field).to_be_focused()
    expect(field).to_have_value("Original question")
    field.fill("Edited question")
    field.press("Enter")
    expect(
        page.locator("#messages .message[data-role=assistant] .message-content").last
    ).to_have_text("Edited answer")
    expect(page.locator("#messages .message[data-role=assistant]").last).to_have_attribute(
        "data-status", "done"
    )
    assert shown(page) == ["Edited question", "Edited answer"]
    user_message = page.locator("#messages .message[data-role=user]")
    expect(user_message.locator(".branch-position")).to_have_text("2/2")
    second_body = inference.requests(path="/v1/chat/completions")[-1]["body"]
    assert [m["content"] for m in second_body["messages"]] == ["Edited question"]
    page.screenshot(path=str(SCREENSHOTS / "branches.png"))

    user_message.locator(".branch-prev").click()
    expect(user_message.locator(".branch-position")).to_have_text("1/2")
    assert shown(page) == ["Original question", "First answer"]
    wait_for_leaf("First answer")
    page.reload()
    expect(page.locator("#messages .message[data-role=assistant]").last).to_have_attribute(
        "data-status", "done"
    )
    assert shown(page) == ["Original question", "First answer"]
    expect(page.locator("#messages .message[data-role=user] .branch-position")).to_have_text("1/2")

    page.locator("#messages .message[data-role=user] .branch-next").click()
    assert shown(page) == ["Edited question", "Edited answer"]
    wait_for_leaf("Edited answer")
    page.reload()
    expect(page.locator("#messages .message[data-role=user] .branch-position")).to_have_text("2/2")
    assert shown(page) == ["Edited question", "Edited answer"]


def last_token(text: str) -> int:
    return int(re.findall(r"tok(\d+)", text)[-1])


def test_a_reply_streaming_on_another_branch_goes_on_and_esc_stops_it(
    page,  # noqa: F811
    live_site,
    worker,
    inference,
    openai_model,
):
    openai_model.default_params = {"max_new_tokens": 400}
    openai_model.save(update_fields=["default_params"])
    inference.push({"n_tokens": 300, "rate": 20}, {"tokens": ["Quick", " one"], "rate": 50})
    start_chat_as_a_member(page, live_site, openai_model, "Count slowly")
    slow = page.locator("#messages .message[data-role=assistant]").last
    expect(slow).to_have_attribute("data-status", "streaming")
    expect(slow.locator(".message-content")).to_contain_text("tok2")

    user_message = page.locator("#messages .message[data-role=user]")
    left_at = last_token(slow.locator(".message-content").inner_text())
    user_message.locator(".edit-button").click()
    user_message.locator(".message-edit-input").fill("Say something quick")
    user_message.locator(".edit-send").click()
    quick = page.locator("#messages .message[data-role=assistant] .message-content")
    expect(quick).to_have_text("Quick one")
    assert shown(page) == ["Say something quick", "Quick one"]
    page.wait_for_timeout(1_500)  # 30 more tokens stream while their branch is off the page

    page.locator("#messages .message[data-role=user] .branch-prev").click()
    back = page.locator("#messages .message[data-role=assistant]").last
    expect(back).to_have_attribute("data-status", "streaming")
    expect(back.locator(".message-content")).to_contain_text(f"tok{left_at + 25}")
    page.keyboard.press("Escape")
    expect(back).to_have_attribute("data-status", "stopped")
    assert inference.wait_for_disconnect(timeout=3)
    numbers = [
        int(n) for n in re.findall(r"tok(\d+)", back.locator(".message-content").inner_text())
    ]
    assert numbers == list(range(len(numbers)))  # nothing lost while off the page


def test_settings_bound_the_controls_reach_the_model_and_a_switched_model_signs_its_reply(
    page,  # noqa: F811
    live_site,
    worker,
    inference,
    openai_model,
):
    other = LanguageModelFactory(slug="second-scripted", display_name="Second Scripted")
    ModelEndpointFactory(model=other, url=inference.url)
    inference.push(
        {"tokens": ["Hello"], "rate": 50},
        {"tokens": ["```python\nprint(1)\n```"], "rate": 50},
    )
    start_chat_as_a_member(page, live_site, openai_model, "Hi")
    expect(page.locator("#messages .message[data-role=assistant]").last).to_have_attribute(
        "data-status", "done"
    )
    page.click("#settings-toggle")
    top_p = page.locator("#settings-form input[name=top_p]")
    top_p.fill("1.5")  # over the backend's bound: the browser will not submit it
    page.click("#settings-save")
    assert top_p.evaluate("el => el.validity.rangeOverflow") is True
    assert Conversation.objects.get().params == {}
    top_p.fill("0.9")
    page.fill("#settings-form textarea[name=system_prompt]", "Answer in code.")
    page.select_option("#settings-form select[name=model]", other.slug)
    page.screenshot(path=str(SCREENSHOTS / "settings.png"))
    page.click("#settings-save")
    expect(page.locator("#flash-messages")).to_contain_text("Settings saved")
    expect(page.locator("#chat-model")).to_have_text("Second Scripted")

    page.fill("#composer-input", "Print one")
    page.keyboard.press("Enter")
    reply = page.locator("#messages .message[data-role=assistant]").last
    expect(reply).to_have_attribute("data-status", "done")
    expect(reply.locator(".message-model")).to_have_text("Second Scripted")
    expect(reply.locator("pre .code-copy")).to_be_visible()
    first = page.locator("#messages .message[data-role=assistant]").first
    expect(first.locator(".message-model")).to_have_text(openai_model.display_name)
    body = inference.requests(path="/v1/chat/completions")[-1]["body"]
    assert body["messages"][0] == {"role": "system", "content": "Answer in code."}
    assert body["top_p"] == 0.9
