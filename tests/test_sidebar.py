"""The sidebar: groups by date, pages, pins, rename, delete with undo and purge, search."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.factories import ConversationFactory, MessageFactory, UserFactory, reply_factory
from webapp.chat.library import selectors, services
from webapp.chat.models import Conversation, Message
from webapp.core.errors import Conflict, NotFound, ValidationFailed

pytestmark = pytest.mark.django_db


def _aged(conversation: Conversation, days: float) -> Conversation:
    when = timezone.now() - dt.timedelta(days=days)
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=when)
    conversation.refresh_from_db()
    return conversation


def _titles(page: selectors.Page) -> list[tuple[str, str]]:
    return [(group, c.title) for group, c in page.items]


def test_conversations_are_grouped_by_date_with_the_pinned_first(user):
    for title, days in [("old", 40), ("week", 4), ("yesterday", 1), ("today", 0)]:
        _aged(ConversationFactory(user=user, title=title), days)
    pinned = _aged(ConversationFactory(user=user, title="pinned"), 90)
    services.conversation_pin(user=user, conversation_id=pinned.pk, pinned=True)

    page = selectors.conversation_page(user=user)

    assert _titles(page) == [
        ("Pinned", "pinned"),
        ("Today", "today"),
        ("Yesterday", "yesterday"),
        ("Previous 7 days", "week"),
        ("Older", "old"),
    ]
    assert page.next_before is None


def test_pages_follow_each_other_without_gaps_or_repeats(user):
    for i in range(7):
        _aged(ConversationFactory(user=user, title=f"c{i}"), i * 0.01)
    seen, before = [], None
    while True:
        page = selectors.conversation_page(user=user, before=before, size=3)
        seen += [c.title for _, c in page.items]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == [f"c{i}" for i in range(7)]


def test_a_bad_cursor_reads_as_the_first_page(user):
    ConversationFactory(user=user, title="only")
    assert _titles(selectors.conversation_page(user=user, before="not-a-date"))[0][1] == "only"


def test_rename_trims_to_one_line_and_refuses_an_empty_or_long_title(user):
    conversation = ConversationFactory(user=user)
    services.conversation_rename(user=user, conversation_id=conversation.pk, title="  New\n name ")
    conversation.refresh_from_db()
    assert conversation.title == "New name"
    for bad in ["   ", "x" * 201, None]:
        with pytest.raises(ValidationFailed):
            services.conversation_rename(user=user, conversation_id=conversation.pk, title=bad)
    conversation.refresh_from_db()
    assert conversation.title == "New name"


def test_another_users_conversation_cannot_be_renamed_pinned_or_deleted(user):
    theirs = ConversationFactory(title="theirs")
    with pytest.raises(NotFound):
        services.conversation_rename(user=user, conversation_id=theirs.pk, title="mine")
    with pytest.raises(NotFound):
        services.conversation_pin(user=user, conversation_id=theirs.pk, pinned=True)
    with pytest.raises(NotFound):
        services.conversation_delete(user=user, conversation_id=theirs.pk)
    theirs.refresh_from_db()
    assert (theirs.title, theirs.pinned, theirs.deleted_at) == ("theirs", False, None)


def test_pinning_does_not_move_the_conversation_in_time(user):
    conversation = _aged(ConversationFactory(user=user), 3)
    before = conversation.updated_at
    services.conversation_pin(user=user, conversation_id=conversation.pk, pinned=True)
    conversation.refresh_from_db()
    assert conversation.pinned and conversation.updated_at == before


def test_a_deleted_conversation_disappears_and_comes_back_on_undo(user):
    conversation = ConversationFactory(user=user, title="oops")
    services.conversation_delete(user=user, conversation_id=conversation.pk)
    assert _titles(selectors.conversation_page(user=user)) == []
    with pytest.raises(NotFound):
        services.conversation_rename(user=user, conversation_id=conversation.pk, title="x")

    services.conversation_restore(user=user, conversation_id=conversation.pk)
    assert [c.title for _, c in selectors.conversation_page(user=user).items] == ["oops"]


def test_undo_is_refused_after_the_window_and_the_purge_removes_it_for_good(user, settings):
    settings.CHAT_UNDO_SECONDS = 5
    conversation = ConversationFactory(user=user)
    message = MessageFactory(conversation=conversation)
    reply_factory(conversation=conversation, parent=message, text="gone")
    services.conversation_delete(user=user, conversation_id=conversation.pk)
    Conversation.objects.filter(pk=conversation.pk).update(
        deleted_at=timezone.now() - dt.timedelta(seconds=6)
    )
    with pytest.raises(Conflict):
        services.conversation_restore(user=user, conversation_id=conversation.pk)

    kept = ConversationFactory(user=user)
    assert services.conversations_purge() == 1
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(conversation_id=conversation.pk).exists()
    assert Conversation.objects.filter(pk=kept.pk).exists()


def test_a_recent_delete_is_not_purged(user):
    conversation = ConversationFactory(user=user)
    services.conversation_delete(user=user, conversation_id=conversation.pk)
    assert services.conversations_purge() == 0
    assert Conversation.objects.filter(pk=conversation.pk).exists()


def _chat(user, title, said, replied):
    conversation = ConversationFactory(user=user, title=title)
    question = MessageFactory(conversation=conversation, content=said)
    answer = reply_factory(conversation=conversation, parent=question, text=replied)
    return conversation, question, answer


def test_search_finds_a_word_of_a_reply_and_names_that_message(user):
    _chat(user, "Cooking", "How do I boil eggs?", "Put them in water.")
    conversation, _, answer = _chat(user, "Travel", "Where to go?", "Visit the fjords of Norway.")

    hits = selectors.conversation_search(user=user, query="fjord")

    assert [(h.conversation.pk, h.message_id) for h in hits] == [(conversation.pk, answer.pk)]
    assert "fjords" in hits[0].snippet


def test_search_finds_the_users_own_words_and_titles(user):
    _, question, _ = _chat(user, "Eggs", "How do I boil eggs?", "In water.")
    titled, _, _ = _chat(user, "Lighthouse keeping", "hi", "hello")

    assert [h.message_id for h in selectors.conversation_search(user=user, query="boil")] == [
        question.pk
    ]
    by_title = selectors.conversation_search(user=user, query="lighthouse")
    assert [(h.conversation.pk, h.message_id) for h in by_title] == [(titled.pk, None)]


def test_search_covers_only_the_users_own_kept_conversations(user):
    _chat(UserFactory(), "Theirs", "secret walrus", "walrus indeed")
    deleted, _, _ = _chat(user, "Mine", "a walrus", "yes")
    services.conversation_delete(user=user, conversation_id=deleted.pk)
    assert selectors.conversation_search(user=user, query="walrus") == []


@pytest.mark.parametrize("query", ["", "   ", "!!!", "a & | ! (", "x" * 5000, "'; DROP TABLE"])
def test_odd_queries_find_nothing_and_raise_nothing(user, query):
    _chat(user, "Title", "words", "more words")
    assert selectors.conversation_search(user=user, query=query) == []


def test_the_plain_fallback_finds_the_same_words_without_full_text(user, monkeypatch):
    from django.db import connection

    _chat(user, "Other", "hello", "nothing here")
    conversation, _, answer = _chat(user, "Travel", "Where to go?", "Visit the fjords of Norway.")
    monkeypatch.setattr(connection, "vendor", "sqlite")  # the one-command run's database
    hits = selectors.conversation_search(user=user, query="fjords")
    assert [(h.conversation.pk, h.message_id) for h in hits] == [(conversation.pk, answer.pk)]


def test_a_word_in_every_message_opens_at_the_newest_match(user):
    conversation = ConversationFactory(user=user, title="Rivers")
    parent = None
    for i in range(150):
        parent = MessageFactory(conversation=conversation, parent=parent, content=f"river {i}")
        parent = reply_factory(conversation=conversation, parent=parent, text=f"a river, {i}")
    hits = selectors.conversation_search(user=user, query="rivers")
    assert [(h.conversation.pk, h.message_id) for h in hits] == [(conversation.pk, parent.pk)]
    assert "a river, 149" in hits[0].snippet


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite"])
def test_a_word_common_in_the_newest_conversation_still_finds_the_others(user, vendor, monkeypatch):
    from django.db import connection

    _, said_once, _ = _chat(user, "Said once", "I saw an otter today", "Nice.")
    _, _, replied_once = _chat(user, "Replied once", "What swims?", "An otter swims.")
    busy = ConversationFactory(user=user, title="Busy")
    parent = None
    for i in range(120):
        parent = MessageFactory(conversation=busy, parent=parent, content=f"otter {i}")
        parent = reply_factory(conversation=busy, parent=parent, text=f"the otter, {i}")
    monkeypatch.setattr(connection, "vendor", vendor)  # sqlite: the plain fallback

    hits = selectors.conversation_search(user=user, query="otter")

    assert [(h.conversation.title, h.message_id) for h in hits] == [
        ("Busy", parent.pk),
        ("Replied once", replied_once.pk),
        ("Said once", said_once.pk),
    ]


def test_replies_imported_as_text_are_found_too(user):
    conversation = ConversationFactory(user=user, title="Imported")
    question = MessageFactory(conversation=conversation, content="Where?")
    answer = MessageFactory(
        conversation=conversation, parent=question, role="assistant", content="By the estuary."
    )
    hits = selectors.conversation_search(user=user, query="estuary")
    assert [(h.conversation.pk, h.message_id) for h in hits] == [(conversation.pk, answer.pk)]


def test_search_reads_vectors_stored_with_each_message_and_chat_reply():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, is_generated FROM information_schema.columns"
            " WHERE column_name = 'search_vector' ORDER BY table_name"
        )
        assert cursor.fetchall() == [
            ("chat_message", "ALWAYS"),
            ("generations_generation", "ALWAYS"),
        ]
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING gin (search_vector)'"
            " ORDER BY indexname"
        )
        assert [row[0] for row in cursor.fetchall()] == [
            "chat_message_search_vector",
            "generations_generation_search_vector",
        ]


def test_beat_purges_through_the_task(user, settings):
    from webapp.chat.tasks import purge_deleted_conversations

    assert "purge-deleted-conversations" in settings.CELERY_BEAT_SCHEDULE
    conversation = ConversationFactory(user=user)
    Conversation.objects.filter(pk=conversation.pk).update(
        deleted_at=timezone.now() - dt.timedelta(minutes=5)
    )
    assert purge_deleted_conversations() == 1
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
