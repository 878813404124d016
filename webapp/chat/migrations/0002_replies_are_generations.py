"""A reply becomes a generation of its own.

Every assistant message gets a generation with the same id (so token logs still
in Redis stay readable under the new keys), carrying its text, status, stats,
parameters and the history it answered; then the message loses those fields.
"""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery

REPLY_FIELDS = [
    "status",
    "finish_reason",
    "prompt_tokens",
    "generated_tokens",
    "time_to_first_token_ms",
    "tokens_per_second",
    "backend_model_id",
    "params",
    "error_code",
    "error_detail",
    "started_at",
    "finished_at",
]
CONTEXT_STATUSES = ("done", "stopped")
BATCH = 500


def _history(reply, by_id):
    """The messages a reply answered, as the worker built them: root to parent."""
    path, node = [], by_id.get(reply.parent_id)
    while node is not None:
        path.append(node)
        node = by_id.get(node.parent_id)
    return [
        {"role": m.role, "content": m.content}
        for m in reversed(path)
        if m.content and (m.role != "assistant" or m.status in CONTEXT_STATUSES)
    ]


def forwards(apps, schema_editor):
    Conversation = apps.get_model("chat", "Conversation")
    Message = apps.get_model("chat", "Message")
    Generation = apps.get_model("generations", "Generation")
    for conversation in Conversation.objects.all().iterator():
        messages = list(Message.objects.filter(conversation=conversation))
        by_id = {m.pk: m for m in messages}
        generations = [
            Generation(
                id=m.pk,
                user_id=conversation.user_id,
                language_model_id=m.language_model_id or conversation.model_id,
                origin="chat",
                messages=_history(m, by_id),
                channel_group=f"conversation.{conversation.pk}",
                text=m.content,
                **{name: getattr(m, name) for name in REPLY_FIELDS},
            )
            for m in messages
            if m.role == "assistant"
        ]
        Generation.objects.bulk_create(generations, batch_size=BATCH)
        Message.objects.filter(conversation=conversation, role="assistant").update(
            generation_id=models.F("id"), content=""
        )
    # bulk_create stamps created_at with the time of the migration: take the message's.
    Generation.objects.filter(origin="chat").update(
        created_at=Subquery(Message.objects.filter(pk=OuterRef("pk")).values("created_at")[:1])
    )


def backwards(apps, schema_editor):
    Message = apps.get_model("chat", "Message")
    for message in Message.objects.filter(generation__isnull=False).select_related("generation"):
        generation = message.generation
        for name in REPLY_FIELDS:
            setattr(message, name, getattr(generation, name))
        message.content = generation.text
        message.language_model_id = generation.language_model_id
        message.save()


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0001_initial"),
        ("generations", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="generation",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=models.deletion.SET_NULL,
                related_name="chat_message",
                to="generations.generation",
            ),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveIndex(model_name="message", name="chat_msg_active"),
        migrations.RemoveField(model_name="message", name="language_model"),
        *[migrations.RemoveField(model_name="message", name=name) for name in REPLY_FIELDS],
    ]
