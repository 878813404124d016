"""The audit log refuses UPDATE and DELETE from any client, not only from the application."""

from django.db import migrations

POSTGRESQL = [
    """
    CREATE OR REPLACE FUNCTION access_auditentry_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER access_auditentry_append_only
    BEFORE UPDATE OR DELETE ON access_auditentry
    FOR EACH ROW EXECUTE FUNCTION access_auditentry_append_only()
    """,
]
POSTGRESQL_UNDO = [
    "DROP TRIGGER IF EXISTS access_auditentry_append_only ON access_auditentry",
    "DROP FUNCTION IF EXISTS access_auditentry_append_only()",
]
SQLITE = [
    f"""
    CREATE TRIGGER access_auditentry_no_{op.lower()}
    BEFORE {op} ON access_auditentry
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: {op} refused'); END
    """
    for op in ("UPDATE", "DELETE")
]
SQLITE_UNDO = [f"DROP TRIGGER IF EXISTS access_auditentry_no_{op}" for op in ("update", "delete")]


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor):
        for statement in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("access", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRESQL, "sqlite": SQLITE}),
            _run({"postgresql": POSTGRESQL_UNDO, "sqlite": SQLITE_UNDO}),
        )
    ]
