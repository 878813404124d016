"""The fair queue's placement of a new generation as a PostgreSQL function, so a send
takes the model's row lock, counts the free slots and saves its rows in one statement
(``webapp.generations.queue.queue_place`` says what it decides)."""

from __future__ import annotations

from django.db import migrations

# In a VOLATILE function each statement takes a new snapshot: the free slots are counted
# once the lock is held, as queue_place's second statement counts them.
PLACE = """
CREATE OR REPLACE FUNCTION gatehouse_place(model uuid, default_capacity integer)
RETURNS uuid LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    chosen uuid;
BEGIN
    PERFORM 1 FROM "catalog_languagemodel" WHERE "id" = model FOR NO KEY UPDATE;
    IF EXISTS (
        SELECT 1 FROM "generations_generation"
        WHERE "language_model_id" = model AND "status" = 'queued' AND "admitted_at" IS NULL
    ) THEN
        RETURN NULL;
    END IF;
    SELECT places."id" INTO chosen FROM (
        SELECT e."id",
               COALESCE(NULLIF(e."max_concurrent", 0), NULLIF(e."reported_capacity", 0),
                        default_capacity)
               - (SELECT COUNT(*) FROM "generations_generation" g
                  WHERE g."endpoint_id" = e."id" AND g."admitted_at" IS NOT NULL
                    AND g."status" IN ('queued', 'streaming')) AS free
        FROM "catalog_modelendpoint" e
        WHERE e."model_id" = model AND e."is_active" AND e."healthy"
    ) places
    WHERE places.free > 0
    ORDER BY places.free DESC
    LIMIT 1;
    RETURN chosen;
END
$$;
"""
DROP = "DROP FUNCTION IF EXISTS gatehouse_place(uuid, integer);"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PLACE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0005_merge_0004_completion_0004_generation_blind"),
        ("catalog", "0004_merge_capacity_and_gate"),
    ]

    operations = [migrations.RunPython(create, drop)]
