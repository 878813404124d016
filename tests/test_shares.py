"""Shared snapshots: created from the path to the leaf, read-only, revocable, continued."""

from __future__ import annotations

import pytest

from tests.factories import (
    ConversationFactory,
    LanguageModelFactory,
    MessageFactory,
    UserFactory,
    reply_factory,
)
from webapp.chat.library import sharing
from webapp.chat.models import Conversation, Share
from webapp.core.errors import NotFound, PermissionDenied, ValidationFailed

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(user):
    conversation = ConversationFactory(user=user, title="Shared chat")
    question = MessageFactory(conversation=conversation, content="What is **2+2**?")
    answer = reply_factory(
        conversation=conversation,
        parent=question,
        text="It is <script>alert(1)</script> **4**.",
        params={"temperature": 0.3, "seed": 7},
    )
    return conversation, question, answer


def test_a_share_copies_the_path_so_later_edits_do_not_change_it(user, chat):
    conversation, _, answer = chat
    share = sharing.share_create(user=user, conversation_id=conversation.pk)
    MessageFactory(conversation=conversation, parent=answer, content="a later message")
    answer.generation.text = "changed"
    answer.generation.save()

    shown = sharing.share_get(token=share.token)
    assert [m["content"] for m in shown.messages] == [
        "What is **2+2**?",
        "It is <script>alert(1)</script> **4**.",
    ]
    assert shown.params == {"temperature": 0.3, "seed": 7}


def test_a_share_follows_the_chosen_leaf_not_a_sibling_branch(user, chat):
    conversation, question, answer = chat
    reply_factory(conversation=conversation, parent=question, text="another branch")
    share = sharing.share_create(user=user, conversation_id=conversation.pk, leaf_id=answer.pk)
    assert share.messages[-1]["content"].startswith("It is")


def test_sharing_from_the_sidebar_shares_the_branch_last_viewed_not_the_newest(client, user, chat):
    conversation, question, answer = chat
    follow = MessageFactory(conversation=conversation, parent=answer, content="And 3+3?")
    reply_factory(conversation=conversation, parent=question, text="Newer branch")
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=follow)
    client.force_login(user)

    response = client.post(f"/c/{conversation.pk}/share")  # no leaf: the chat is not open

    assert response.status_code == 200
    share = Share.objects.get(token=response.json()["token"])
    assert [m["content"] for m in share.messages] == [
        "What is **2+2**?",
        "It is <script>alert(1)</script> **4**.",
        "And 3+3?",
    ]


def test_share_ids_are_unguessable_and_a_guess_is_not_found(user, chat):
    share = sharing.share_create(user=user, conversation_id=chat[0].pk)
    assert len(share.token) >= 22
    for guess in [
        "aaaaaaaaaaaaaaaaaaaaaa",
        share.token[:-1] + "x",
        "../../etc",
        "",
        None,
        "a" * 500,
    ]:
        with pytest.raises(NotFound):
            sharing.share_get(token=guess)


def test_only_the_owner_can_share_or_revoke(user, chat):
    other = UserFactory()
    with pytest.raises(NotFound):
        sharing.share_create(user=other, conversation_id=chat[0].pk)
    share = sharing.share_create(user=user, conversation_id=chat[0].pk)
    with pytest.raises(NotFound):
        sharing.share_revoke(user=other, token=share.token)
    assert sharing.share_get(token=share.token)

    sharing.share_revoke(user=user, token=share.token)
    with pytest.raises(NotFound):
        sharing.share_get(token=share.token)


def test_an_empty_conversation_cannot_be_shared(user):
    conversation = ConversationFactory(user=user)
    with pytest.raises(ValidationFailed):
        sharing.share_create(user=user, conversation_id=conversation.pk)
    assert not Share.objects.exists()


def test_continue_copies_the_snapshot_into_the_viewers_account(user, chat):
    share = sharing.share_create(user=user, conversation_id=chat[0].pk)
    viewer = UserFactory()

    copy = sharing.share_continue(user=viewer, token=share.token)

    assert copy.user == viewer and copy.model == chat[0].model
    texts = [m.text for m in copy.messages.order_by("created_at")]
    assert texts == [m["content"] for m in share.messages]
    assert Conversation.objects.filter(user=user).count() == 1


def test_continue_is_refused_with_the_reason_when_the_viewer_may_not_use_the_model(user):
    gated = LanguageModelFactory(display_name="Gated One", access_policy="gated")
    conversation = ConversationFactory(user=user, model=gated)
    MessageFactory(conversation=conversation, content="hi")
    share = sharing.share_create(user=user, conversation_id=conversation.pk)
    viewer = UserFactory()
    with pytest.raises(PermissionDenied, match="Gated One"):
        sharing.share_continue(user=viewer, token=share.token)
    assert not Conversation.objects.filter(user=viewer).exists()


def test_a_leaf_from_another_conversation_is_not_found_and_nothing_is_shared(user, chat):
    elsewhere = MessageFactory(conversation=ConversationFactory(user=user))
    for leaf in [elsewhere.pk, "not-an-id"]:
        with pytest.raises(NotFound):
            sharing.share_create(user=user, conversation_id=chat[0].pk, leaf_id=leaf)
    assert not Share.objects.exists()
