"""In a real browser: share a conversation, open the link signed out and continue it in
another account; search for a word of a reply and land on that message."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import (
    PASSWORD,
    ConversationFactory,
    MessageFactory,
    UserFactory,
    reply_factory,
)
from tests.test_browser import browser, page, start_chat_as_a_member  # noqa: F401 (fixtures)
from webapp.chat.models import Conversation

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _open_menu(tab, action: str) -> None:
    item = tab.locator("#conversation-list li.conversation-item").first
    item.locator("summary").click()
    item.locator(f"button[data-action={action}]").click()


def _signed_out_page(browser):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    other = context.new_page()
    other.set_default_timeout(20_000)
    refused: list[str] = []
    other.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return context, other, refused


def test_share_open_the_link_signed_out_and_continue_into_another_account(
    page,  # noqa: F811
    browser,  # noqa: F811
    live_site,
    worker,
    inference,
    openai_model,
):
    inference.push({"tokens": ["Otters ", "**swim** ", "<script>window.pwned=1</script>", "well."]})
    start_chat_as_a_member(page, live_site, openai_model, "Tell me about otters")
    reply = page.locator(".message[data-role=assistant]").last
    expect(reply).to_have_attribute("data-status", "done")

    _open_menu(page, "share")
    expect(page.locator("#share-dialog")).to_be_visible()
    url = page.locator("#share-url").input_value()
    assert re.fullmatch(rf"{re.escape(live_site.url)}/s/[A-Za-z0-9_-]{{22}}", url)

    context, visitor, refused = _signed_out_page(browser)
    visitor.goto(url)
    expect(visitor.locator("#share-messages")).to_contain_text("Tell me about otters")
    expect(visitor.locator("#share-messages strong")).to_have_text("swim")
    expect(visitor.locator("#share-model")).to_have_text(openai_model.display_name)
    assert visitor.evaluate("window.pwned") is None

    visitor.click("#share-continue")
    expect(visitor).to_have_url(re.compile(r"/accounts/login/"))
    newcomer = UserFactory()
    newcomer.emailaddress_set.create(email=newcomer.email, verified=True, primary=True)
    visitor.fill("input[name=login]", newcomer.email)
    visitor.fill("input[name=password]", PASSWORD)
    visitor.click("form button[type=submit]")
    expect(visitor).to_have_url(url)
    visitor.click("#share-continue")

    expect(visitor).to_have_url(re.compile(r"/c/[0-9a-f-]+/$"))
    expect(visitor.locator("#messages")).to_contain_text("Tell me about otters")
    expect(visitor.locator("#messages")).to_contain_text("swim")
    copy = Conversation.objects.get(user=newcomer)
    assert visitor.url.endswith(copy.get_absolute_url())
    context.close()
    assert refused == []


def test_search_finds_a_word_from_a_reply_and_opens_the_conversation_there(
    page,  # noqa: F811
    live_site,
    worker,
    inference,
    openai_model,
):
    inference.push({"tokens": ["The ", "narwhal ", "has ", "a ", "tusk."]})
    start_chat_as_a_member(page, live_site, openai_model, "Tell me about whales")
    expect(page.locator(".message[data-role=assistant]").last).to_have_attribute(
        "data-status", "done"
    )
    conversation = Conversation.objects.get()
    found = conversation.messages.get(role="assistant")
    parent = found
    for i in range(30):  # enough later turns that the match is far above the end
        parent = MessageFactory(conversation=conversation, parent=parent, content=f"more {i}\n" * 4)
        parent = reply_factory(conversation=conversation, parent=parent, text=f"answer {i}\n\n" * 4)

    page.goto(f"{live_site.url}/")
    page.fill("#sidebar-search-input", "narwhal")
    hit = page.locator("#search-hits a").first
    expect(hit).to_contain_text("narwhal")
    hit.click()

    expect(page).to_have_url(re.compile(rf"/c/{conversation.pk}/\?m={found.pk}"))
    match = page.locator(f".message[data-id='{found.pk}']")
    expect(match).to_have_class(re.compile("message-found"))
    expect(match).to_be_in_viewport()
    expect(page.locator(".message[data-role=assistant]").last).not_to_be_in_viewport()


def test_the_sidebar_loads_more_on_scroll_and_deletes_with_undo_and_pins(
    page,  # noqa: F811
    live_site,
):
    from tests.test_browser import sign_in

    member = UserFactory()
    member.emailaddress_set.create(email=member.email, verified=True, primary=True)
    for i in range(45):
        ConversationFactory(user=member, title=f"Chat number {i}")
    sign_in(page, live_site, member.email)
    items = page.locator("#conversation-list li.conversation-item")
    expect(items).to_have_count(30)
    page.locator("#conversation-list li.conversation-item").last.scroll_into_view_if_needed()
    expect(items).to_have_count(45)
    expect(page.locator("#conversation-list")).to_contain_text("Chat number 0")

    newest = page.locator("#conversation-list li.conversation-item").first
    expect(newest).to_contain_text("Chat number 44")
    _open_menu(page, "delete")
    expect(newest).to_be_hidden()
    expect(page.locator("#sidebar-toast")).to_contain_text("deleted")
    page.click("#sidebar-undo")
    expect(newest).to_be_visible()

    last = page.locator("li.conversation-item", has_text="Chat number 0")
    last.locator("summary").click()
    last.locator("button[data-action=pin]").click()
    expect(page.locator("#conversation-list li").first).to_contain_text("Pinned")
    page.reload()
    expect(page.locator("#conversation-list li.conversation-item").first).to_contain_text(
        "Chat number 0"
    )
    assert Conversation.objects.filter(user=member, deleted_at__isnull=True).count() == 45


def test_a_long_conversation_shows_its_earlier_messages_as_the_reader_scrolls_up(
    page,  # noqa: F811
    live_site,
):
    from tests.test_browser import sign_in

    member = UserFactory()
    member.emailaddress_set.create(email=member.email, verified=True, primary=True)
    conversation = ConversationFactory(user=member, title="Long one")
    parent = None
    for i in range(60):
        parent = MessageFactory(conversation=conversation, parent=parent, content=f"question {i}")
        parent = reply_factory(conversation=conversation, parent=parent, text=f"**answer {i}**")
    sign_in(page, live_site, member.email)
    page.goto(f"{live_site.url}{conversation.get_absolute_url()}")

    messages = page.locator("#messages .message")
    expect(messages.last).to_contain_text("answer 59")
    expect(page.locator("#messages-earlier")).to_have_text("Show 60 earlier messages")
    expect(page.locator("#messages")).not_to_contain_text("question 0")

    for _ in range(3):  # each batch comes as the top scrolls into view
        page.eval_on_selector("#chat-scroll", "el => { el.scrollTop = 0; }")
        page.wait_for_timeout(200)
    expect(page.locator("#messages-earlier")).to_be_hidden()
    expect(messages).to_have_count(120)
    expect(messages.first).to_contain_text("question 0")
    expect(messages.nth(1).locator(".message-content strong")).to_have_text("answer 0")


def test_a_search_hit_on_a_hidden_branch_shows_that_branch_after_a_reload_too(
    page,  # noqa: F811
    live_site,
):
    from tests.test_browser import sign_in

    member = UserFactory()
    member.emailaddress_set.create(email=member.email, verified=True, primary=True)
    conversation = ConversationFactory(user=member, title="Forked")
    first = MessageFactory(conversation=conversation, content="Which whale?")
    hidden = reply_factory(conversation=conversation, parent=first, text="The **narwhal**.")
    edited = MessageFactory(conversation=conversation, content="Which fish?")
    shown = reply_factory(conversation=conversation, parent=edited, text="The salmon.")
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=shown)
    sign_in(page, live_site, member.email)

    page.fill("#sidebar-search-input", "narwhal")
    page.locator("#search-hits a").first.click()
    expect(page).to_have_url(re.compile(rf"/c/{conversation.pk}/\?m={hidden.pk}"))
    match = page.locator(f".message[data-id='{hidden.pk}']")
    expect(match).to_have_class(re.compile("message-found"))
    expect(match.locator("strong")).to_have_text("narwhal")
    expect(page.locator("#messages")).not_to_contain_text("salmon")
    question = page.locator("#messages .message").first
    expect(question.locator(".branch-position")).to_have_text("1/2")

    page.goto(f"{live_site.url}{conversation.get_absolute_url()}")
    expect(page.locator("#messages")).to_contain_text("narwhal")


def test_rename_in_place_saves_on_enter_and_cancels_on_escape(
    page,  # noqa: F811
    live_site,
):
    from tests.test_browser import sign_in

    member = UserFactory()
    member.emailaddress_set.create(email=member.email, verified=True, primary=True)
    conversation = ConversationFactory(user=member, title="Old name")
    MessageFactory(conversation=conversation, content="hello")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, live_site, member.email)
    page.goto(f"{live_site.url}{conversation.get_absolute_url()}")
    item = page.locator("#conversation-list li.conversation-item").first
    field = item.locator("input.conversation-rename")

    _open_menu(page, "rename")
    expect(field).to_be_focused()
    expect(field).to_have_value("Old name")
    field.fill("Trip to Norway")
    field.press("Enter")
    expect(field).to_have_count(0)
    expect(item.locator(".conversation-title")).to_have_text("Trip to Norway")
    expect(page.locator("#chat-title")).to_have_text("Trip to Norway")

    _open_menu(page, "rename")
    field.fill("Not this")
    field.press("Escape")
    expect(field).to_have_count(0)
    expect(item.locator(".conversation-title")).to_have_text("Trip to Norway")

    _open_menu(page, "rename")
    field.fill("   ")
    field.press("Enter")
    expect(page.locator("#sidebar-toast")).to_be_visible()
    expect(item.locator(".conversation-title")).to_have_text("Trip to Norway")

    page.reload()
    expect(page.locator("#conversation-list .conversation-title").first).to_have_text(
        "Trip to Norway"
    )
    conversation.refresh_from_db()
    assert conversation.title == "Trip to Norway" and dialogs == []
