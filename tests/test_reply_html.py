"""Opening a long conversation: replies rendered once and kept, the newest messages on the
page and the older ones built as the reader scrolls up, in a fixed number of queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import ConversationFactory, MessageFactory, reply_factory
from webapp.chat.models import Message
from webapp.chat.pages import SHOWN_MESSAGES
from webapp.chat.rendering import html_key
from webapp.generations.models import Status

pytestmark = pytest.mark.django_db

HOSTILE = 'Otters <script>alert("x")</script><img src=x onerror=alert(1)> **swim**.'


def _chain(conversation, turns: int, *, text: str = "answer") -> list[Message]:
    made, parent = [], None
    for i in range(turns):
        parent = MessageFactory(conversation=conversation, parent=parent, content=f"question {i}")
        parent = reply_factory(conversation=conversation, parent=parent, text=f"{text} {i}")
        made.append(parent)
    return made


def _open(client, conversation) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(conversation.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode(), len(queries)


def test_a_finished_reply_is_rendered_once_and_its_html_kept_sanitized(client, member):
    conversation = ConversationFactory(user=member)
    question = MessageFactory(conversation=conversation, content="otters?")
    reply = reply_factory(conversation=conversation, parent=question, text=HOSTILE)

    page, _ = _open(client, conversation)
    reply.refresh_from_db()
    assert "<strong>swim</strong>" in reply.html and reply.html in page
    assert "<script" not in reply.html and "<img" not in reply.html
    assert "&lt;script&gt;" in reply.html  # shown as text, inert
    assert reply.html_key == html_key(HOSTILE)

    # Kept HTML is what the next open shows: it is not rendered again.
    Message.objects.filter(pk=reply.pk).update(html="<p>kept once</p>")
    page, _ = _open(client, conversation)
    assert "<p>kept once</p>" in page and "<strong>swim</strong>" not in page


def test_html_from_another_renderer_or_text_is_rendered_again(client, member, monkeypatch):
    conversation = ConversationFactory(user=member)
    reply = reply_factory(conversation=conversation, parent=None, text="**bold**")
    _open(client, conversation)
    Message.objects.filter(pk=reply.pk).update(html="<p>stale</p>")

    monkeypatch.setattr("webapp.chat.rendering.RENDERER_VERSION", "next-version")
    page, _ = _open(client, conversation)
    assert "<p>stale</p>" not in page and "<strong>bold</strong>" in page
    reply.refresh_from_db()
    assert reply.html_key.startswith("next-version:")

    Message.objects.filter(pk=reply.pk).update(html="<p>stale</p>")
    reply.generation.text = "*other* text"
    reply.generation.save(update_fields=["text"])
    page, _ = _open(client, conversation)
    assert "<p>stale</p>" not in page and "<em>other</em>" in page


def test_a_reply_still_streaming_is_shown_but_not_kept(client, member):
    conversation = ConversationFactory(user=member)
    reply = reply_factory(
        conversation=conversation, parent=None, text="half **a** sen", status=Status.STREAMING
    )
    _open(client, conversation)
    reply.refresh_from_db()
    assert reply.html == "" and reply.html_key == ""


def test_a_long_conversation_renders_its_newest_messages_and_counts_the_earlier(client, member):
    conversation = ConversationFactory(user=member)
    replies = _chain(conversation, 100)
    page, _ = _open(client, conversation)
    assert page.count('class="message"') == SHOWN_MESSAGES + 1  # and the template
    assert "answer 99" in page and f'data-id="{replies[0].pk}"' not in page
    assert "Show 140 earlier messages" in page
    assert "answer 0" in page  # in the page's JSON, for the browser to build it


def test_opening_costs_the_same_queries_for_10_and_2000_messages(client, member):
    small, large = ConversationFactory(user=member), ConversationFactory(user=member)
    _chain(small, 5)
    _chain(large, 1000)
    first_small, first_large = _open(client, small)[1], _open(client, large)[1]
    again_small, again_large = _open(client, small)[1], _open(client, large)[1]
    assert first_small == first_large  # rendering and keeping the HTML: one query
    assert again_small == again_large == first_small - 1
