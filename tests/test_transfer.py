"""Export as JSON and Markdown; import Gatehouse and ChatGPT exports, all or nothing."""

from __future__ import annotations

import json

import pytest

from tests.factories import (
    ConversationFactory,
    LanguageModelFactory,
    MessageFactory,
    UserFactory,
    reply_factory,
)
from webapp.chat.library import export, imports
from webapp.chat.models import Conversation, Message
from webapp.chat.selectors import message_path, message_serialize
from webapp.core.errors import NotFound, ValidationFailed
from webapp.generations.models import Generation

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(db):
    return LanguageModelFactory(slug="house-model", display_name="House Model")


@pytest.fixture
def branched(user, model):
    """A question with two replies (a fork), the second followed up."""
    conversation = ConversationFactory(user=user, model=model, title="Branched")
    question = MessageFactory(conversation=conversation, content="Name a colour")
    reply_factory(conversation=conversation, parent=question, text="Red", params={"seed": 1})
    second = reply_factory(
        conversation=conversation,
        parent=question,
        text="Blue",
        params={"seed": 2},
        generated_tokens=3,
        tokens_per_second=12.5,
    )
    follow = MessageFactory(conversation=conversation, parent=second, content="Why blue?")
    return conversation, follow


def _import(user, data, model):
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return imports.conversations_import(user=user, data=raw, default_model=model)


def test_json_export_holds_the_whole_tree_with_parameters_and_stats(user, branched):
    data = export.conversations_export_json(user=user, conversation_id=branched[0].pk)
    (conversation,) = data["conversations"]
    assert data["format"] == "gatehouse-export" and conversation["model"] == "house-model"
    assert [m["content"] for m in conversation["messages"]] == [
        "Name a colour",
        "Red",
        "Blue",
        "Why blue?",
    ]
    blue = conversation["messages"][2]
    assert blue["generation"]["params"] == {"seed": 2}
    assert blue["generation"]["generated_tokens"] == 3
    assert blue["generation"]["tokens_per_second"] == 12.5


def test_markdown_export_shows_the_path_to_the_newest_message(user, branched):
    text = export.conversations_export_markdown(user=user, conversation_id=branched[0].pk)
    assert text.startswith("# Branched")
    assert "Blue" in text and "Why blue?" in text and "Red" not in text


def test_markdown_export_follows_the_branch_last_viewed(user, branched):
    conversation, _ = branched
    red = conversation.messages.get(generation__text="Red")
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=red)
    text = export.conversations_export_markdown(user=user, conversation_id=conversation.pk)
    assert "Red" in text and "Blue" not in text and "Why blue?" not in text


def test_export_of_another_users_conversation_is_not_found(user, branched):
    with pytest.raises(NotFound):
        export.conversations_export_json(user=UserFactory(), conversation_id=branched[0].pk)


def test_a_gatehouse_export_comes_back_with_its_branches(user, branched, model):
    data = export.conversations_export_json(user=user)
    other = UserFactory()

    summary = _import(other, data, model)

    assert (summary.source, summary.conversations, summary.messages, summary.branches) == (
        "gatehouse",
        1,
        4,
        1,
    )
    copy = Conversation.objects.get(user=other)
    assert copy.title == "Branched" and copy.model == model
    assert [m.text for m in message_path(conversation=copy)] == [
        "Name a colour",
        "Blue",
        "Why blue?",
    ]
    question = copy.messages.get(content="Name a colour")
    assert sorted(m.text for m in question.children.select_related("generation")) == [
        "Blue",
        "Red",
    ]


def test_imported_replies_keep_the_stats_model_and_parameters_of_the_export(user, branched, model):
    data = export.conversations_export_json(user=user)
    other = UserFactory()
    _import(other, data, model)

    copy = Conversation.objects.get(user=other)
    blue = copy.messages.select_related("generation").get(generation__text="Blue")
    generation = blue.generation
    assert generation.user == other and generation.language_model == model
    assert generation.status == "done" and generation.params == {"seed": 2}
    assert (generation.generated_tokens, generation.tokens_per_second) == (3, 12.5)
    exported = next(m for m in data["conversations"][0]["messages"] if m["content"] == "Blue")
    assert generation.created_at.isoformat() == exported["created_at"]
    # What the page shows on hover, and what a second export carries again.
    assert message_serialize(blue)["generation"]["stats"]["generated_tokens"] == 3
    again = export.conversations_export_json(user=other)["conversations"][0]["messages"]
    assert next(m for m in again if m["content"] == "Blue")["generation"]["params"] == {"seed": 2}


def test_a_round_trip_keeps_the_system_prompt_parameters_branch_viewed_and_pin(
    user, branched, model
):
    conversation, _ = branched
    red = conversation.messages.get(generation__text="Red")
    Conversation.objects.filter(pk=conversation.pk).update(
        system_prompt="Answer in one word.",
        params={"temperature": 0.2, "stop": ["\n\n"]},
        current_leaf=red,
        pinned=True,
    )
    other = UserFactory()

    _import(other, export.conversations_export_json(user=user), model)

    copy = Conversation.objects.get(user=other)
    assert (copy.system_prompt, copy.params, copy.pinned) == (
        "Answer in one word.",
        {"temperature": 0.2, "stop": ["\n\n"]},
        True,
    )
    shown = message_path(conversation=copy, leaf_id=copy.current_leaf_id)
    assert [m.text for m in shown] == ["Name a colour", "Red"]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"system_prompt": 5}, "the system prompt must be text"),
        ({"system_prompt": "x" * 100_000}, "the system prompt is too long"),
        ({"params": ["temperature", 1]}, "its parameters are not an object"),
        ({"params": {"temperature": 9}}, "temperature must be"),
        ({"params": {"volume": 11}}, "unknown sampling parameter"),
        ({"current_leaf": "7"}, "its current message '7' is not one of its messages"),
        ({"current_leaf": ["1"]}, "its current message .* is not one of its messages"),
        ({"pinned": "yes"}, "pinned is neither true nor false"),
    ],
)
def test_bad_conversation_settings_in_an_export_are_refused_and_nothing_is_imported(
    user, model, fields, error
):
    one = {"id": "1", "parent": None, "role": "user", "content": "hi"}
    data = {
        "format": "gatehouse-export",
        "conversations": [
            {"title": "good", "messages": [one], "system_prompt": "Be brief."},
            {"title": "bad", "messages": [one], **fields},
        ],
    }
    with pytest.raises(ValidationFailed, match=f"Conversation 2: {error}"):
        _import(user, data, model)
    assert not Conversation.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    "stats",
    [
        {"generated_tokens": -1},
        {"generated_tokens": "lots"},
        {"tokens_per_second": True},
        {"status": "streaming"},
        {"params": ["seed", 1]},
        {"finish_reason": "x" * 500},
        "not an object",
    ],
)
def test_bad_stats_in_an_export_are_refused_and_nothing_is_imported(user, model, stats):
    data = {
        "format": "gatehouse-export",
        "conversations": [
            {
                "title": "t",
                "messages": [
                    {"id": "1", "parent": None, "role": "user", "content": "hi"},
                    {
                        "id": "2",
                        "parent": "1",
                        "role": "assistant",
                        "content": "yo",
                        "generation": stats,
                    },
                ],
            }
        ],
    }
    with pytest.raises(ValidationFailed, match="Conversation 1: a reply"):
        _import(user, data, model)
    assert not Conversation.objects.filter(user=user).exists()
    assert not Generation.objects.filter(user=user).exists()


def test_a_model_the_importer_may_not_use_is_replaced_by_their_choice(user, model):
    gated = LanguageModelFactory(slug="gated-model", access_policy="gated")
    data = {
        "format": "gatehouse-export",
        "conversations": [
            {
                "title": "t",
                "model": gated.slug,
                "messages": [{"id": "1", "parent": None, "role": "user", "content": "hi"}],
            }
        ],
    }
    _import(user, data, model)
    assert Conversation.objects.get(user=user).model == model


def _chatgpt(mapping, title="From ChatGPT"):
    return [
        {"title": title, "create_time": 1_700_000_000.5, "mapping": mapping, "current_node": None}
    ]


def _node(key, parent, children, role=None, text=None):
    message = None
    if role is not None:
        message = {
            "author": {"role": role},
            "content": {"content_type": "text", "parts": [text]},
            "create_time": 1_700_000_001,
        }
    return {"id": key, "parent": parent, "children": children, "message": message}


def test_a_chatgpt_export_keeps_its_mapping_tree_as_branches(user, model):
    mapping = {
        "root": _node("root", None, ["sys"]),
        "sys": _node("sys", "root", ["q"], "system", ""),
        "q": _node("q", "sys", ["a1", "a2"], "user", "Hello there"),
        "a1": _node("a1", "q", [], "assistant", "First answer"),
        "a2": _node("a2", "q", ["q2"], "assistant", "Second answer"),
        "q2": _node("q2", "a2", [], "user", "Thanks"),
    }
    summary = _import(user, _chatgpt(mapping), model)

    assert (summary.source, summary.conversations, summary.messages, summary.branches) == (
        "chatgpt",
        1,
        4,
        1,
    )
    conversation = Conversation.objects.get(user=user)
    question = conversation.messages.get(content="Hello there")
    assert question.parent is None
    assert sorted(question.children.values_list("content", flat=True)) == [
        "First answer",
        "Second answer",
    ]


def test_a_cycle_in_a_chatgpt_mapping_is_refused_and_nothing_is_imported(user, model):
    good = {"r": _node("r", None, ["m"]), "m": _node("m", "r", [], "user", "fine")}
    cycle = {
        "a": _node("a", "b", ["b"], "user", "one"),
        "b": _node("b", "a", ["a"], "assistant", "two"),
    }
    data = _chatgpt(good) + _chatgpt(cycle, title="Loop")
    with pytest.raises(ValidationFailed, match="cycle"):
        _import(user, data, model)
    assert not Conversation.objects.filter(user=user).exists()


@pytest.mark.parametrize("text", ["x" * 1001, "a NUL \u0000 inside"])
def test_a_chatgpt_message_too_long_or_with_a_nul_is_refused_as_in_a_gatehouse_export(
    user, model, settings, text
):
    settings.CHAT_MAX_MESSAGE_CHARS = 100  # imports take ten times that
    mapping = {
        "r": _node("r", None, ["q"]),
        "q": _node("q", "r", ["a"], "user", "Tell me a story"),
        "a": _node("a", "q", [], "assistant", text),
    }
    fine = {"r": _node("r", None, ["m"]), "m": _node("m", "r", [], "user", "fine")}
    data = _chatgpt(fine, title="Fine") + _chatgpt(mapping)
    with pytest.raises(
        ValidationFailed, match="Conversation 2: a message is too long or holds a NUL character"
    ):
        _import(user, data, model)
    assert not Conversation.objects.filter(user=user).exists()
    gatehouse = _export_of({"id": "1", "role": "user", "content": text})
    with pytest.raises(ValidationFailed, match="Conversation 1: a message is too long"):
        _import(user, gatehouse, model)


def test_children_that_are_not_the_nodes_own_are_refused(user, model):
    mapping = {
        "r": _node("r", None, ["m", "r"]),
        "m": _node("m", "r", [], "user", "hi"),
    }
    with pytest.raises(ValidationFailed, match="children"):
        _import(user, _chatgpt(mapping), model)


def test_a_tree_ten_thousand_deep_imports_without_recursion(user, model):
    messages = [
        {
            "id": str(i),
            "parent": str(i - 1) if i else None,
            "role": "user" if i % 2 == 0 else "assistant",
            "content": f"turn {i}",
        }
        for i in range(10_000)
    ]
    data = {
        "format": "gatehouse-export",
        "conversations": [{"title": "Deep", "messages": messages}],
    }

    summary = _import(user, data, model)

    assert summary.messages == 10_000
    conversation = Conversation.objects.get(user=user)
    path = message_path(conversation=conversation)
    assert len(path) == 10_000 and path[-1].content == "turn 9999"
    text = export.conversations_export_markdown(user=user, conversation_id=conversation.pk)
    assert "turn 9999" in text


def test_deeply_nested_json_is_refused_as_not_an_export(user, model):
    with pytest.raises(ValidationFailed, match="not JSON"):
        _import(user, b"[" * 200_000 + b"]" * 200_000, model)


def test_a_file_over_the_limit_is_refused_by_its_size(user, model, settings):
    settings.CHAT_IMPORT_MAX_BYTES = 1000
    with pytest.raises(ValidationFailed, match="too large"):
        imports.import_size_check(200 * 1024 * 1024)
    with pytest.raises(ValidationFailed, match="too large"):
        _import(user, b" " * 1001, model)


def _export_of(*messages):
    return json.dumps(
        {"format": "gatehouse-export", "conversations": [{"messages": list(messages)}]}
    ).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"{}",
        b"[]",
        b'{"format": "gatehouse-export", "conversations": "x"}',
        _export_of({"id": "1", "role": "tool", "content": "x"}),
        _export_of({"id": "1", "parent": "9", "role": "user", "content": "x"}),
        _export_of({"id": "1", "role": "user", "content": 5}),
        _export_of(*[{"id": "1", "role": "user", "content": "same id"}] * 2),
        _export_of({"id": "1", "role": "user", "content": "nul \u0000"}),
        b'[{"mapping": {"a": {"parent": "zzz", "children": []}}}]',
        b'[{"mapping": []}]',
    ],
)
def test_malformed_imports_are_refused_and_change_nothing(user, model, data):
    before = Message.objects.count()
    with pytest.raises(ValidationFailed):
        _import(user, data, model)
    assert not Conversation.objects.filter(user=user).exists()
    assert Message.objects.count() == before


def test_an_import_that_fails_midway_leaves_nothing_behind(user, model, monkeypatch):
    from webapp.chat.library import imports as module

    real, calls = module.messages_insert, []

    def second_fails(rows, times):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        real(rows, times)

    monkeypatch.setattr(module, "messages_insert", second_fails)
    one = {"id": "1", "parent": None, "role": "user", "content": "hi"}
    data = {
        "format": "gatehouse-export",
        "conversations": [{"title": "a", "messages": [one]}, {"title": "b", "messages": [one]}],
    }
    with pytest.raises(RuntimeError):
        _import(user, data, model)
    assert not Conversation.objects.filter(user=user).exists()
