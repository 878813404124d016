"""Run by tests/test_sqlite_chat.py in a process of its own, on a fresh SQLite file (the
one-command run's database): send, resend, branch and regenerate through the chat
services, and print what was saved as JSON."""

from __future__ import annotations

import json
import uuid

import django


def main() -> None:
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from webapp.accounts.models import User
    from webapp.catalog.models import LanguageModel, ModelEndpoint
    from webapp.chat.services import conversation_start, message_regenerate, message_send
    from webapp.core.errors import Conflict
    from webapp.generations.models import Generation

    user = User.objects.create_user(email="sqlite@example.org", password="not-used-here")
    model = LanguageModel.objects.create(
        slug="local", display_name="Local", backend="openai", access_policy="registered"
    )
    ModelEndpoint.objects.create(model=model, url="http://127.0.0.1:9", max_concurrent=1)
    first = conversation_start(user=user, model=model, content="Hello")
    conversation = first.user_message.conversation
    Generation.objects.update(status="done", text="Hi!")
    client_id = uuid.uuid4()
    second = message_send(
        user=user, conversation_id=conversation.pk, content="Again", client_id=client_id
    )
    resent = message_send(
        user=user, conversation_id=conversation.pk, content="Again", client_id=client_id
    )
    try:
        message_send(user=user, conversation_id=conversation.pk, content="Too soon")
        busy = ""
    except Conflict as exc:
        busy = exc.code
    Generation.objects.update(status="done", text="Fine")
    branch = message_send(
        user=user,
        conversation_id=conversation.pk,
        content="From the start",
        parent_id=first.assistant_message.pk,
    )
    Generation.objects.update(status="done")
    again = message_regenerate(user=user, message_id=branch.assistant_message.pk)
    conversation.refresh_from_db()
    print(
        json.dumps(
            {
                "second_input": second.assistant_message.generation.messages,
                "second_admitted": second.assistant_message.generation.endpoint_id is not None,
                "resent_same": resent.assistant_message.pk == second.assistant_message.pk,
                "resent_created": resent.created,
                "busy": busy,
                "branch_input": [
                    m["content"] for m in branch.assistant_message.generation.messages
                ],
                "regenerated_input": [m["content"] for m in again.generation.messages],
                "leaf_is_regenerated": conversation.current_leaf_id == again.pk,
                "generations": Generation.objects.count(),
            }
        )
    )


if __name__ == "__main__":
    main()
