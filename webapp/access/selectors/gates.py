"""Read access to gates and to where a person stands on one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from ..models import (
    AccessRequest,
    Gate,
    GateField,
    GateLevel,
    Grant,
    LicenceVersion,
    RequestStatus,
)


def gate_list() -> QuerySet[Gate]:
    return Gate.objects.prefetch_related("levels", "models")


def gate_get(*, slug: str) -> Gate | None:
    """Return the gate with its levels, form fields and active models (three more queries)."""
    from webapp.catalog.models import LanguageModel

    return (
        Gate.objects.filter(slug=slug)
        .prefetch_related(
            Prefetch("levels", queryset=GateLevel.objects.order_by("level")),
            Prefetch("fields", queryset=GateField.objects.order_by("position", "name")),
            Prefetch("models", queryset=LanguageModel.objects.filter(is_active=True)),
        )
        .first()
    )


def licence_current(*, gate: Gate) -> LicenceVersion | None:
    return gate.licences.order_by("-version").first()


def gate_can_review(*, user: Any, gate: Gate) -> bool:
    """Staff review every gate; a gate's reviewer group reviews that gate."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff:
        return True
    return bool(gate.reviewer_group_id) and user.groups.filter(pk=gate.reviewer_group_id).exists()


def gates_reviewable(*, user: Any) -> QuerySet[Gate]:
    if not user.is_authenticated or not user.is_active:
        return Gate.objects.none()
    if user.is_staff:
        return Gate.objects.all()
    return Gate.objects.filter(reviewer_group__in=user.groups.all())


@dataclass(frozen=True)
class Standing:
    """Where a person stands on a gate: what they hold, what waits, when they may apply."""

    grant: Grant | None
    pending: AccessRequest | None
    last_decided: AccessRequest | None
    licence: LicenceVersion | None  # the gate's current one
    apply_after: datetime | None  # a rejection's cool-down, if it still runs

    @property
    def licence_outdated(self) -> bool:
        return bool(
            self.grant and self.licence and self.grant.licence_version_id != self.licence.pk
        )

    @property
    def may_apply(self) -> bool:
        return self.pending is None and self.apply_after is None


def standing_get(*, user: Any, gate: Gate, now: datetime | None = None) -> Standing:
    now = now or timezone.now()
    licence = licence_current(gate=gate)
    if not user.is_authenticated:
        return Standing(None, None, None, licence, None)
    grant = (
        Grant.objects.select_related("licence_version")
        .filter(user=user, gate=gate, revoked_at=None)
        .first()
    )
    requests = AccessRequest.objects.filter(user=user, gate=gate)
    pending = requests.filter(status=RequestStatus.PENDING).first()
    decided = requests.exclude(decided_at=None).order_by("-decided_at").first()
    return Standing(grant, pending, decided, licence, cooldown_until(gate=gate, user=user, now=now))


def cooldown_until(*, gate: Gate, user: Any, now: datetime) -> datetime | None:
    """When the user may apply again after their latest rejection, if that is still ahead."""
    rejected = (
        AccessRequest.objects.filter(user=user, gate=gate, status=RequestStatus.REJECTED)
        .order_by("-decided_at")
        .values_list("decided_at", flat=True)
        .first()
    )
    if rejected is None:
        return None
    until = rejected + timedelta(days=gate.cooldown_days)
    return until if until > now else None


def requests_of(*, user: Any) -> QuerySet[AccessRequest]:
    """The user's requests on every gate, newest first, with what was decided."""
    return AccessRequest.objects.filter(user=user).select_related("gate", "reviewer")


def grants_of(*, user: Any) -> QuerySet[Grant]:
    return Grant.objects.filter(user=user).select_related("gate", "licence_version")
