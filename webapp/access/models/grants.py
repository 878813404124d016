"""What people ask for (AccessRequest) and what they hold (Grant)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from webapp.core.models import BaseModel

from .gates import Gate, LicenceVersion


def _someone() -> models.ForeignKey:
    """A person an action names (reviewer, granter, revoker), kept as null if they go."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


class RequestKind(models.TextChoices):
    NEW = "new", "Request"
    RENEWAL = "renewal", "Renewal"


class AccessRequest(BaseModel):
    gate = models.ForeignKey(Gate, on_delete=models.CASCADE, related_name="requests")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_requests"
    )
    kind = models.CharField(max_length=16, choices=RequestKind.choices, default=RequestKind.NEW)
    levels = models.JSONField(default=list, help_text="The levels asked for.")
    answers = models.JSONField(default=dict, blank=True)
    licence_version = models.ForeignKey(
        LicenceVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=RequestStatus.choices, default=RequestStatus.PENDING
    )
    approved_levels = models.JSONField(default=list, blank=True)
    reviewer = _someone()
    reason = models.TextField(blank=True, help_text="The reviewer's reason, shown to them.")
    decided_at = models.DateTimeField(null=True, blank=True)
    auto_decided = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "gate"],
                condition=Q(status="pending"),
                name="access_one_pending_request",
            )
        ]
        indexes = [models.Index(fields=["gate", "status", "created_at"], name="access_req_queue")]

    def __str__(self) -> str:
        return f"{self.user} → {self.gate} ({self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status == RequestStatus.PENDING


class Grant(BaseModel):
    """The levels one person holds on one gate; at most one live (unrevoked) grant per pair."""

    gate = models.ForeignKey(Gate, on_delete=models.CASCADE, related_name="grants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_grants"
    )
    levels = models.JSONField(default=list)
    licence_version = models.ForeignKey(
        LicenceVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    request = models.ForeignKey(
        AccessRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    granted_by = _someone()
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = _someone()
    revoke_reason = models.TextField(blank=True)
    # Set by the periodic jobs so each runs once per grant and expiry.
    expiry_notified_at = models.DateTimeField(null=True, blank=True)
    expiry_announced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "gate"],
                condition=Q(revoked_at__isnull=True),
                name="access_one_live_grant",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.gate}: {', '.join(self.levels)}"

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())


class Notify(models.TextChoices):
    IMMEDIATE = "immediate", "At once, for each new request"
    DAILY = "daily", "A daily digest"
    OFF = "off", "Never"


class ReviewerSettings(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviewer_settings"
    )
    notify = models.CharField(max_length=16, choices=Notify.choices, default=Notify.IMMEDIATE)
    last_digest_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user}: {self.notify}"
