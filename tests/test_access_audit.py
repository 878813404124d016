"""The audit log only grows: no update or delete through the application, the admin, or SQL."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from webapp.access.models import AuditEntry
from webapp.access.models.audit import AppendOnly

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(db):
    return AuditEntry.objects.create(action="request.submitted", actor_email="a@example.org")


def test_the_application_cannot_change_or_delete_an_entry(entry):
    with pytest.raises(AppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(action="nothing happened")
    with pytest.raises(AppendOnly):
        AuditEntry.objects.all().delete()
    entry.action = "nothing happened"
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()
    assert AuditEntry.objects.get(pk=entry.pk).action == "request.submitted"


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE access_auditentry SET action = 'forged'",
        "DELETE FROM access_auditentry",
    ],
)
def test_the_database_refuses_sql_that_would_rewrite_the_log(entry, sql):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert AuditEntry.objects.get(pk=entry.pk).action == "request.submitted"
