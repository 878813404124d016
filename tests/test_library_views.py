"""The sidebar's endpoints, the share page, export downloads and the import form."""

from __future__ import annotations

import json
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.factories import (
    ConversationFactory,
    LanguageModelFactory,
    MessageFactory,
    UserFactory,
    reply_factory,
)
from webapp.chat.library import sharing
from webapp.chat.models import Conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(member):
    conversation = ConversationFactory(user=member, title="Kept chat")
    question = MessageFactory(conversation=conversation, content="Tell me about **otters**")
    answer = reply_factory(
        conversation=conversation,
        parent=question,
        text='Otters <script>alert("x")</script><img src=x onerror=alert(1)> **swim**.',
        params={"temperature": 0.2},
    )
    return conversation, answer


def test_the_sidebar_shows_groups_actions_and_the_search_box(client, chat):
    page = client.get(chat[0].get_absolute_url()).content.decode()
    assert 'id="sidebar-search-input"' in page and "Today" in page
    assert 'data-action="rename"' in page and "js/sidebar.js" in page


def test_the_list_endpoint_serves_the_next_page_without_repeating_the_group(
    client, member, settings
):
    settings.CHAT_SIDEBAR_PAGE = 2
    for i in range(3):
        ConversationFactory(user=member, title=f"chat {i}")
    first = client.get("/").content.decode()
    marker = first.split('class="conversation-more"')[1]
    before = marker.split('data-before="')[1].split('"')[0]
    rest = client.get("/c/list", {"before": before, "group": "Today"}).content.decode()
    assert rest.count("conversation-item") == 1 and "conversation-group" not in rest
    assert "conversation-group" in client.get("/c/list", {"before": before}).content.decode()


def test_search_returns_a_link_to_the_matching_message(client, chat):
    conversation, answer = chat
    body = client.get("/c/search", {"q": "swim"}).content.decode()
    assert f'{conversation.get_absolute_url()}?m={answer.pk}"' in body
    assert "Nothing matches" in client.get("/c/search", {"q": "zebra"}).content.decode()


def test_rename_pin_delete_and_undo_answer_in_json(client, chat):
    url = f"/c/{chat[0].pk}"
    assert client.post(f"{url}/rename", {"title": "Otters"}).json()["title"] == "Otters"
    assert client.post(f"{url}/pin", {"pinned": "true"}).json()["pinned"] is True
    assert client.post(f"{url}/delete").json()["undo_seconds"] > 0
    assert client.get(chat[0].get_absolute_url()).status_code == 404
    assert client.post(f"{url}/restore").json()["restored"] is True
    assert client.get(chat[0].get_absolute_url()).status_code == 200


def test_bad_input_to_the_actions_gets_a_clear_error_and_changes_nothing(client, chat):
    url = f"/c/{chat[0].pk}"
    response = client.post(f"{url}/rename", {"title": " "})
    assert response.status_code == 400 and response.json()["detail"] == "Type a title."
    assert client.post(f"{url}/pin", {"pinned": "maybe"}).status_code == 400
    assert client.post(f"{url}/restore").status_code == 404  # not deleted
    assert client.get(f"{url}/delete").status_code == 405
    chat[0].refresh_from_db()
    assert (chat[0].title, chat[0].pinned, chat[0].deleted_at) == ("Kept chat", False, None)


def test_another_users_ids_are_not_found(client, member):
    theirs = ConversationFactory(title="theirs")
    for action in ["rename", "pin", "delete", "restore", "share"]:
        response = client.post(f"/c/{theirs.pk}/{action}", {"title": "x", "pinned": "true"})
        assert response.status_code == 404, action
    assert client.get(f"/c/{theirs.pk}/export.json").status_code == 404
    assert client.post(f"/c/{uuid.uuid4()}/delete").status_code == 404
    theirs.refresh_from_db()
    assert (theirs.title, theirs.deleted_at) == ("theirs", None)


def test_the_actions_need_a_session_and_a_csrf_token(chat):
    assert Client().post(f"/c/{chat[0].pk}/delete").status_code == 401
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(chat[0].user)
    assert strict.post(f"/c/{chat[0].pk}/delete").status_code == 403
    chat[0].refresh_from_db()
    assert chat[0].deleted_at is None


def test_the_share_page_renders_on_the_server_for_anyone_with_script_inert(client, chat):
    url = client.post(f"/c/{chat[0].pk}/share").json()["url"]
    page = Client().get(url).content.decode()
    assert "Kept chat" in page and "<strong>swim</strong>" in page
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert" in page  # shown as text, inert
    assert "temperature" in page and chat[0].model.display_name in page
    assert "Tell me about **otters**" in page  # the user's own words stay as typed


def test_guessed_and_revoked_share_ids_are_not_found(client, chat):
    token = sharing.share_create(user=chat[0].user, conversation_id=chat[0].pk).token
    assert Client().get("/s/AAAAAAAAAAAAAAAAAAAAAA").status_code == 404
    assert Client().get("/s/<script>").status_code == 404
    assert Client().post(f"/s/{token}/revoke").status_code == 302  # to sign in
    assert client.post(f"/s/{token}/revoke").status_code == 302
    assert Client().get(f"/s/{token}").status_code == 404


def test_someone_else_cannot_revoke_a_share(chat):
    token = sharing.share_create(user=chat[0].user, conversation_id=chat[0].pk).token
    other = Client()
    other.force_login(UserFactory())
    assert other.post(f"/s/{token}/revoke").status_code == 404
    assert Client().get(f"/s/{token}").status_code == 200


def test_continue_signed_out_asks_to_sign_in_and_signed_in_copies(chat):
    token = sharing.share_create(user=chat[0].user, conversation_id=chat[0].pk).token
    response = Client().post(f"/s/{token}/continue")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    viewer = UserFactory()
    browser = Client()
    browser.force_login(viewer)
    response = browser.post(f"/s/{token}/continue")
    copy = Conversation.objects.get(user=viewer)
    assert response["Location"] == copy.get_absolute_url()
    assert browser.get(copy.get_absolute_url()).status_code == 200


def test_continue_without_access_to_the_model_says_why(member):
    gated = LanguageModelFactory(display_name="Gated Giant", access_policy="gated")
    conversation = ConversationFactory(user=member, model=gated)
    MessageFactory(conversation=conversation, content="hi")
    token = sharing.share_create(user=member, conversation_id=conversation.pk).token
    viewer = Client()
    viewer.force_login(UserFactory())
    response = viewer.post(f"/s/{token}/continue")
    assert response.status_code == 403 and "Gated Giant" in response.content.decode()


def test_exports_download_as_json_and_markdown(client, chat):
    one = client.get(f"/c/{chat[0].pk}/export.json")
    assert one["Content-Type"] == "application/json" and "attachment" in one["Content-Disposition"]
    assert json.loads(one.content)["conversations"][0]["title"] == "Kept chat"
    every = client.get("/c/export.md")
    assert every.content.decode().startswith("# Kept chat")
    assert client.get("/c/export.exe").status_code == 404


def _upload(client, data: bytes, model, **extra):
    file = SimpleUploadedFile("conversations.json", data, content_type="application/json")
    return client.post("/c/data", {"file": file, "model": model.slug}, **extra)


def test_the_import_form_brings_a_file_in_and_shows_the_summary(client, member):
    model = LanguageModelFactory(display_name="Import Target")
    data = json.dumps(
        [
            {
                "title": "From elsewhere",
                "mapping": {
                    "r": {"parent": None, "children": ["m"], "message": None},
                    "m": {
                        "parent": "r",
                        "children": [],
                        "message": {"author": {"role": "user"}, "content": {"parts": ["hi"]}},
                    },
                },
            }
        ]
    ).encode()
    page = _upload(client, data, model).content.decode()
    assert "Imported 1 conversation with 1 message" in page and "ChatGPT" in page
    assert Conversation.objects.get(user=member).title == "From elsewhere"


def test_a_huge_upload_is_refused_by_its_declared_size(client, member, settings):
    model = LanguageModelFactory()
    settings.CHAT_IMPORT_MAX_BYTES = 1024
    response = _upload(client, b"[" + b" " * 4096 + b"]", model)
    assert response.status_code == 413 and "too large" in response.content.decode()
    assert not Conversation.objects.filter(user=member).exists()


def test_an_import_without_the_csrf_token_is_refused(member):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    model = LanguageModelFactory()
    data = b'{"format": "gatehouse-export", "conversations": [{"messages": []}]}'
    assert _upload(strict, data, model).status_code == 403
    assert not Conversation.objects.filter(user=member).exists()


def test_a_bad_import_shows_the_reason_and_imports_nothing(client, member):
    model = LanguageModelFactory()
    response = _upload(client, b'{"format": "gatehouse-export", "conversations": 3}', model)
    assert response.status_code == 400 and "no list of conversations" in response.content.decode()
    gated = LanguageModelFactory(access_policy="gated")
    assert _upload(client, b"[]", gated).status_code == 400
    assert not Conversation.objects.filter(user=member).exists()


def test_a_body_declared_as_200_mb_is_refused_before_it_is_read(client, member):
    model = LanguageModelFactory()
    response = _upload(client, b"[]", model, CONTENT_LENGTH=str(200 * 1024 * 1024))
    assert response.status_code == 413
    assert "too large (200 MB" in response.content.decode()


def _queries(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_sidebar_and_a_conversation_cost_the_same_queries_however_many_there_are(
    client, member
):
    small = ConversationFactory(user=member)
    parent = MessageFactory(conversation=small)
    few = _queries(client, small.get_absolute_url())
    for _ in range(60):
        ConversationFactory(user=member)
    for i in range(1000):
        parent = MessageFactory(conversation=small, parent=parent, content=f"turn {i}")
    assert _queries(client, small.get_absolute_url()) == few


def _forked(member):
    """A conversation where the hit is on the older of two branches, the newer one shown."""
    conversation = ConversationFactory(user=member, title="Forked")
    first = MessageFactory(conversation=conversation, content="Which whale?")
    hidden = reply_factory(conversation=conversation, parent=first, text="The narwhal.")
    later = MessageFactory(conversation=hidden.conversation, parent=hidden, content="And then?")
    edited = MessageFactory(conversation=conversation, content="Which fish?")
    shown = reply_factory(conversation=conversation, parent=edited, text="The salmon.")
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=shown)
    return conversation, hidden, later, shown


def test_a_search_hit_on_a_hidden_branch_opens_that_branch_and_remembers_it(client, member):
    conversation, hidden, later, _ = _forked(member)
    hit = client.get("/c/search", {"q": "narwhal"}).content.decode()
    assert f"?m={hidden.pk}" in hit

    page = client.get(f"{conversation.get_absolute_url()}?m={hidden.pk}").content.decode()
    assert f'data-id="{hidden.pk}"' in page and "The narwhal." in page
    assert f'data-id="{later.pk}"' in page and "The salmon." not in page.split("messages-data")[0]
    conversation.refresh_from_db()
    assert conversation.current_leaf_id == hidden.pk

    again = client.get(conversation.get_absolute_url()).content.decode()
    assert "The narwhal." in again.split("messages-data")[0]


def test_a_hit_on_the_branch_shown_or_from_elsewhere_changes_nothing(client, member):
    conversation, _, _, shown = _forked(member)
    elsewhere = reply_factory(conversation=ConversationFactory(user=member), parent=None, text="x")
    for anchor in (shown.pk, elsewhere.pk, "not-a-uuid", uuid.uuid4()):
        response = client.get(f"{conversation.get_absolute_url()}?m={anchor}")
        assert response.status_code == 200
        assert "The salmon." in response.content.decode().split("messages-data")[0]
        conversation.refresh_from_db()
        assert conversation.current_leaf_id == shown.pk
