"""What reviewers read: the queue of requests and the grants they may revoke."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from ..models import AccessRequest, Grant, RequestStatus
from .gates import gates_reviewable

QUEUE_LIMIT = 200


def review_queue(
    *,
    reviewer: Any,
    gate: str = "",
    status: str = RequestStatus.PENDING,
    level: str = "",
    q: str = "",
) -> list[AccessRequest]:
    """Requests on the gates ``reviewer`` reviews, oldest first, filtered and searched."""
    requests = AccessRequest.objects.filter(gate__in=gates_reviewable(user=reviewer))
    if gate:
        requests = requests.filter(gate__slug=gate)
    if status in RequestStatus.values:
        requests = requests.filter(status=status)
    requests = requests.select_related("gate", "user", "reviewer", "licence_version")
    if q:
        requests = requests.annotate(answers_text=Cast("answers", TextField())).filter(
            Q(user__email__icontains=q)
            | Q(user__display_name__icontains=q)
            | Q(answers_text__icontains=q)
        )
    # A level lives in a JSON list: matched in Python, within the queue's limit.
    found = list(requests.order_by("created_at")[:QUEUE_LIMIT])
    return [r for r in found if not level or level in r.levels]


def grants_reviewable(*, reviewer: Any, gate: str = "", q: str = "") -> QuerySet[Grant]:
    grants = Grant.objects.filter(
        gate__in=gates_reviewable(user=reviewer), revoked_at=None
    ).select_related("gate", "user", "licence_version")
    if gate:
        grants = grants.filter(gate__slug=gate)
    if q:
        grants = grants.filter(user__email__icontains=q)
    return grants.order_by("gate__name", "user__email")[:QUEUE_LIMIT]
