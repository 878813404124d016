"""The schema change that made replies generations keeps the conversations made before it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("chat", "0001_initial"), ("generations", None)]
AFTER = [("chat", "0002_replies_are_generations")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    state = [t for t in targets if t[1] is not None]
    return executor.loader.project_state(state).apps


def test_the_migration_carries_a_conversation_made_with_the_old_schema(user):
    old = migrate(BEFORE)
    model = old.get_model("catalog", "LanguageModel").objects.create(
        slug="old-model", display_name="Old", backend="openai"
    )
    conversation = old.get_model("chat", "Conversation").objects.create(
        user_id=user.pk, model=model, title="Before the change"
    )
    Message = old.get_model("chat", "Message")
    question = Message.objects.create(conversation=conversation, role="user", content="Hi")
    answer = Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        content="Hello there",
        status="done",
        params={"max_new_tokens": 32},
        generated_tokens=3,
        backend_model_id="scripted/openai-model",
        language_model=model,
    )
    follow_up = Message.objects.create(
        conversation=conversation, parent=answer, role="user", content="And then?"
    )
    cut = Message.objects.create(
        conversation=conversation,
        parent=follow_up,
        role="assistant",
        content="Partial",
        status="interrupted",
        error_code="interrupted",
    )

    new = migrate(AFTER)
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    Generation = new.get_model("generations", "Generation")
    first = Generation.objects.get(pk=answer.pk)  # the same id: old token logs stay readable
    assert (first.text, first.status, first.origin) == ("Hello there", "done", "chat")
    assert (first.params, first.generated_tokens) == ({"max_new_tokens": 32}, 3)
    assert first.user_id == user.pk and first.language_model_id == model.pk
    assert first.channel_group == f"conversation.{conversation.pk}"
    assert first.messages == [{"role": "user", "content": "Hi"}]
    assert first.created_at == answer.created_at
    second = Generation.objects.get(pk=cut.pk)
    assert (second.status, second.error_code, second.text) == (
        "interrupted",
        "interrupted",
        "Partial",
    )
    assert [m["content"] for m in second.messages] == ["Hi", "Hello there", "And then?"]

    from webapp.chat.models import Conversation as NewConversation
    from webapp.chat.models import Message as NewMessage
    from webapp.chat.selectors import message_path

    path = message_path(conversation=NewConversation.objects.get(pk=conversation.pk))
    assert [m.text for m in path] == ["Hi", "Hello there", "And then?", "Partial"]
    assert NewMessage.objects.get(pk=answer.pk).generation_id == answer.pk
