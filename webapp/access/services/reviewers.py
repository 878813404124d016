"""Reviewers' notification preference and their daily digest."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from webapp.core.errors import ValidationFailed

from ..models import AccessRequest, Gate, Notify, RequestStatus, ReviewerSettings
from . import notify

# A digest is due once a day; a little less than 24 h so a late run never skips a day.
DIGEST_EVERY = timedelta(hours=20)


def reviewer_settings_save(*, user: Any, notify: Any) -> ReviewerSettings:
    if notify not in Notify.values:
        raise ValidationFailed(f"Choose one of: {', '.join(Notify.values)}.")
    row, _ = ReviewerSettings.objects.update_or_create(user=user, defaults={"notify": notify})
    return row


def reviewers_send_digests(*, now: datetime | None = None) -> int:
    """Mail each reviewer who chose the daily digest the requests waiting on their gates.

    Safe to run twice: a reviewer's digest is due again only DIGEST_EVERY after the last.
    """
    now = now or timezone.now()
    waiting: dict[Any, list[AccessRequest]] = defaultdict(list)
    reviewers: dict[Any, Any] = {}
    pending = AccessRequest.objects.filter(status=RequestStatus.PENDING).select_related(
        "gate", "user"
    )
    by_gate: dict[Any, list[AccessRequest]] = defaultdict(list)
    for request in pending.order_by("created_at"):
        by_gate[request.gate_id].append(request)
    for gate in Gate.objects.filter(pk__in=list(by_gate)):
        daily = notify.gate_reviewers(gate=gate).filter(reviewer_settings__notify=Notify.DAILY)
        for reviewer in daily:
            reviewers[reviewer.pk] = reviewer
            waiting[reviewer.pk] += by_gate[gate.pk]
    sent = 0
    for reviewer_id, requests in waiting.items():
        with transaction.atomic():
            row = ReviewerSettings.objects.select_for_update().get(user_id=reviewer_id)
            if row.last_digest_at and row.last_digest_at > now - DIGEST_EVERY:
                continue
            row.last_digest_at = now
            row.save(update_fields=["last_digest_at"])
            notify.reviewer_digest(reviewer=reviewers[reviewer_id], requests=requests)
            sent += 1
    return sent
