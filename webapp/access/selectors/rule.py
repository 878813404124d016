"""The gate half of the access rule: does a user's live grant give a level, and if not, why.

``webapp.catalog.policy`` asks ``holdings`` (one query for any number of
gates) and ``holding_allows``; ``gate_refusal`` answers a gate directly
(downloads, the gate's own pages) with the reason a person can read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone
from django.utils.dateformat import format as date_format

from ..models import AccessRequest, Gate, GateLevel, Grant, Level, LicenceVersion, RequestStatus

# The level each action needs (ARCHITECTURE.md's access model).
ACTION_LEVELS: dict[str, str] = {
    "view": Level.CHAT,
    "chat": Level.CHAT,
    "arena": Level.CHAT,
    "api": Level.API,
    "download": Level.WEIGHTS,
}
LEVEL_WORDS: dict[str, str] = {Level.CHAT: "chat", Level.API: "API", Level.WEIGHTS: "weights"}


@dataclass(frozen=True)
class Holding:
    """What the rule needs of a user's live grant on one gate, for one level."""

    levels: frozenset[str]
    expires_at: datetime | None
    licence_ok: bool  # the gate's newest licence is the one the holder accepted
    offered: bool  # the gate still offers the level


def current_licence(gate: Any = None) -> Subquery:
    """The id of the newest licence version of ``gate`` (default: the outer row's gate)."""
    gate = OuterRef("gate") if gate is None else gate
    newest = LicenceVersion.objects.filter(gate=gate).order_by("-version").values("pk")[:1]
    return Subquery(newest)


def holdings(*, user_id: Any, gate_ids: Iterable[Any], level: str) -> dict[Any, Holding]:
    """Return the user's live grants on ``gate_ids`` as Holdings, by gate id: one query."""
    rows = (
        Grant.objects.filter(user_id=user_id, gate_id__in=list(gate_ids), revoked_at__isnull=True)
        .annotate(
            current=current_licence(),
            offered=Exists(GateLevel.objects.filter(gate=OuterRef("gate"), level=level)),
        )
        .values_list("gate_id", "levels", "expires_at", "licence_version_id", "current", "offered")
    )
    return {
        gate_id: Holding(frozenset(levels), expires_at, current in (None, accepted), offered)
        for gate_id, levels, expires_at, accepted, current, offered in rows
    }


def holding_allows(holding: Holding | None, level: str, now: datetime | None = None) -> bool:
    if holding is None or not holding.offered or level not in holding.levels:
        return False
    if holding.expires_at is not None and holding.expires_at <= (now or timezone.now()):
        return False
    return holding.licence_ok


def gate_refusal(*, user: Any, gate: Gate, level: str) -> str | None:
    """Return why ``user`` may not use ``level`` of ``gate`` (a sentence), or None if they may."""
    if not user.is_authenticated:
        return f"Sign in, then request access to {gate.name}."
    if not user.is_active:
        return "Your account is deactivated."
    if user.is_staff:
        return None
    holding = holdings(user_id=user.pk, gate_ids=[gate.pk], level=level).get(gate.pk)
    if holding_allows(holding, level):
        return None
    return grant_refusal_reason(user_id=user.pk, gate=gate, level=level, holding=holding)


def grant_refusal_reason(*, user_id: Any, gate: Gate, level: str, holding: Holding | None) -> str:
    """Explain a refusal ``holding_allows`` gave (the refused path may query a little more)."""
    word = LEVEL_WORDS.get(level, level)
    if holding is not None:
        if holding.expires_at is not None and holding.expires_at <= timezone.now():
            when = date_format(timezone.localtime(holding.expires_at), "j F Y")
            return f"Your access to {gate.name} expired on {when}. Renew it on the gate's page."
        if not holding.licence_ok:
            return (
                f"The licence of {gate.name} has changed: accept the new version on the "
                "gate's page to go on."
            )
        if not holding.offered:
            return f"{gate.name} no longer offers {word} access."
    requests = AccessRequest.objects.filter(user_id=user_id, gate=gate)
    if requests.filter(status=RequestStatus.PENDING).exists():
        return f"Your request for access to {gate.name} is waiting for review."
    if holding is not None:
        return f"Your access to {gate.name} does not include {word}; ask for it on the gate's page."
    return _past_refusal(user_id, gate, requests) or (
        f"{gate.name} is gated: request access on its page."
    )


def _past_refusal(user_id: Any, gate: Gate, requests: Any) -> str | None:
    """The latest revocation or rejection, whichever came last."""
    revoked = (
        Grant.objects.filter(user_id=user_id, gate=gate, revoked_at__isnull=False)
        .order_by("-revoked_at")
        .first()
    )
    rejected = requests.filter(status=RequestStatus.REJECTED).order_by("-decided_at").first()
    if revoked and (rejected is None or rejected.decided_at <= revoked.revoked_at):
        return f"Your access to {gate.name} was revoked: {revoked.revoke_reason}"
    if rejected:
        return f"Your request for access to {gate.name} was rejected: {rejected.reason}"
    return None
