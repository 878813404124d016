"""Full-text search reads stored vectors (PostgreSQL only; SQLite searches with LIKE).

A word in every message matched through expression indexes had its
``to_tsvector`` computed again for every row the index returned (or for every
reply, on a sequential scan): seconds for 50,000 replies. Generated columns hold
the vector, GIN indexes find it, and a common word is answered by walking the
user's newest rows until enough match.

The columns are not Django fields: only webapp.chat.library.selectors reads them.
Replies' vectors are kept for chat generations only (other origins are never searched).
"""

from django.db import migrations

_COLUMNS = [
    (
        "chat_message",
        "to_tsvector('english'::regconfig, COALESCE(content, ''))",
        "chat_message_search_vector",
        ("chat_message_content_fts", "content"),
    ),
    (
        "generations_generation",
        "CASE WHEN origin = 'chat' THEN to_tsvector('english'::regconfig, COALESCE(text, '')) END",
        "generations_generation_search_vector",
        ("generations_generation_text_fts", "text"),
    ),
]


def _store(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, expression, index, (old_index, _column) in _COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS {old_index}")
        schema_editor.execute(
            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS search_vector tsvector "
            f"GENERATED ALWAYS AS ({expression}) STORED"
        )
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {index} ON {table} USING gin (search_vector)"
        )


def _unstore(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, _expression, index, (old_index, column) in _COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS {index}")
        schema_editor.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS search_vector")
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {old_index} ON {table} USING gin "
            f"(to_tsvector('english'::regconfig, COALESCE({column}, '')))"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0005_reply_html"),
        ("generations", "0003_fair_queue"),
    ]

    operations = [migrations.RunPython(_store, _unstore)]
