"""The append-only audit log.

Rows are only ever inserted: the queryset refuses ``update`` and ``delete``,
an instance refuses a second ``save`` and any ``delete``, the admin is
read-only, and on PostgreSQL (and SQLite) a trigger from the migration
refuses UPDATE and DELETE from any client. References to people and gates
are kept without foreign-key constraints, with a copy of the email and slug,
so deleting a user or a gate never rewrites the log.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone


class AppendOnly(Exception):
    """The audit log is append-only."""


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnly("Audit entries cannot be changed.")

    def delete(self) -> NoReturn:
        raise AppendOnly("Audit entries cannot be deleted.")


class AuditOutcome(models.TextChoices):
    OK = "ok", "Done"
    REFUSED = "refused", "Refused"


def _loose_fk(model: str, **extra: Any) -> models.ForeignKey:
    """A reference that survives its target: no constraint, no cascade."""
    return models.ForeignKey(
        model,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        **extra,
    )


class AuditEntry(models.Model):
    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = _loose_fk(settings.AUTH_USER_MODEL)
    actor_email = models.CharField(max_length=254, blank=True)
    subject = _loose_fk(settings.AUTH_USER_MODEL, help_text="Whose access it concerns.")
    subject_email = models.CharField(max_length=254, blank=True)
    gate = _loose_fk("access.Gate")
    gate_slug = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    outcome = models.CharField(max_length=16, choices=AuditOutcome.choices, default=AuditOutcome.OK)
    target = models.CharField(max_length=64, blank=True, help_text="Id of the request or grant.")
    detail = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["gate", "id"], name="access_audit_gate")]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.outcome}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A storage invariant rather than a business rule: the log can only grow.
        if not self._state.adding:
            raise AppendOnly("Audit entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnly("Audit entries cannot be deleted.")
