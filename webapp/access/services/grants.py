"""Grants: give, revoke, renew, expire; licences: publish a version, accept it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from webapp.accounts.revocation import access_changed
from webapp.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from webapp.core.ids import is_uuid

from ..models import AccessRequest, Gate, Grant, LicenceVersion
from ..selectors.gates import gate_can_review, licence_current
from . import notify
from .audit import NOBODY, Caller, audit_own, audit_record

MAX_REASON = 2000


def reason_clean(reason: Any) -> str:
    """Return the reason given for a rejection or revocation, or raise ValidationFailed."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed("Give a reason: the person will read it.", code="reason_required")
    if len(reason) > MAX_REASON:
        raise ValidationFailed(f"Keep the reason under {MAX_REASON} characters.")
    return reason.strip()


def default_expiry(gate: Gate, now: datetime | None = None) -> datetime | None:
    if gate.grant_days is None:
        return None
    return (now or timezone.now()) + timedelta(days=gate.grant_days)


def grant_give(
    *,
    user: Any,
    gate: Gate,
    levels: Iterable[str],
    licence: LicenceVersion | None,
    expires_at: datetime | None,
    by: Any = None,
    request: AccessRequest | None = None,
    caller: Caller = NOBODY,
) -> Grant:
    """Give ``levels`` on ``gate`` to ``user``: added to their live grant, or a new grant."""
    grant = Grant.objects.select_for_update().filter(user=user, gate=gate, revoked_at=None).first()
    created = grant is None
    if grant is None:
        grant = Grant(user=user, gate=gate, levels=[])
    before = sorted(grant.levels)
    grant.levels = sorted(set(grant.levels) | set(levels))
    grant.licence_version = licence or grant.licence_version
    grant.expires_at = expires_at
    grant.expiry_notified_at = grant.expiry_announced_at = None
    grant.granted_by = by if getattr(by, "is_authenticated", False) else None
    grant.request = request or grant.request
    grant.save()
    audit_record(
        action="grant.created" if created else "grant.changed",
        gate=gate,
        actor=by,
        subject=user,
        target=grant.pk,
        detail={
            "levels": grant.levels,
            "before": before,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "licence_version": licence.version if licence else None,
            "request": str(request.pk) if request else None,
        },
        caller=caller,
    )
    access_changed(user.pk)
    return grant


def grant_revoke(*, reviewer: Any, grant_id: Any, reason: Any, caller: Caller = NOBODY) -> Grant:
    """End a live grant at once, everywhere, with a reason the holder is told."""
    reason = reason_clean(reason)
    if not is_uuid(grant_id):
        raise NotFound("There is no such grant.")
    with transaction.atomic():
        grant = (
            Grant.objects.select_for_update(of=("self",))
            .select_related("gate", "user")
            .filter(pk=grant_id)
            .first()
        )
        if grant is None or not gate_can_review(user=reviewer, gate=grant.gate):
            raise NotFound("There is no such grant.")
        if grant.revoked_at is not None:
            raise Conflict("This grant was revoked already.", code="already_revoked")
        grant.revoked_at, grant.revoked_by, grant.revoke_reason = timezone.now(), reviewer, reason
        grant.save(update_fields=["revoked_at", "revoked_by", "revoke_reason", "updated_at"])
        audit_record(
            action="grant.revoked",
            gate=grant.gate,
            actor=reviewer,
            subject=grant.user,
            target=grant.pk,
            detail={"levels": grant.levels, "reason": reason},
            caller=caller,
        )
        access_changed(grant.user_id)
        notify.grant_revoked(grant=grant)
    return grant


def grant_live(*, user: Any, gate: Gate) -> Grant | None:
    return Grant.objects.filter(user=user, gate=gate, revoked_at=None).first()


def grant_renew(*, user: Any, gate: Gate, caller: Caller = NOBODY) -> Grant | AccessRequest:
    """Renew the user's grant in one step: at once, or as a request for review (per gate)."""
    from .requests import renewal_request_create

    with transaction.atomic():
        grant = (
            Grant.objects.select_for_update().filter(user=user, gate=gate, revoked_at=None).first()
        )
        if grant is None or grant.expires_at is None:
            raise Conflict("You hold no access to renew here.", code="nothing_to_renew")
        if gate.renewal == "review":
            return renewal_request_create(user=user, gate=gate, grant=grant, caller=caller)
        grant.expires_at = default_expiry(gate)
        grant.expiry_notified_at = grant.expiry_announced_at = None
        grant.save(
            update_fields=["expires_at", "expiry_notified_at", "expiry_announced_at", "updated_at"]
        )
        audit_own(
            action="grant.renewed",
            user=user,
            gate=gate,
            target=grant.pk,
            caller=caller,
            expires_at=grant.expires_at.isoformat() if grant.expires_at else None,
        )
        access_changed(user.pk)
    return grant


def grants_expire(*, now: datetime | None = None) -> int:
    """Record each grant that has just expired and close its holder's sockets (run twice: once)."""
    now = now or timezone.now()
    ended = 0
    due = Grant.objects.filter(
        revoked_at=None, expires_at__lte=now, expiry_announced_at=None
    ).select_related("gate", "user")
    for grant in due:
        with transaction.atomic():
            marked = Grant.objects.filter(pk=grant.pk, expiry_announced_at=None).update(
                expiry_announced_at=now
            )
            if not marked:
                continue  # another sweep took it
            audit_record(
                action="grant.expired", gate=grant.gate, subject=grant.user, target=grant.pk
            )
            access_changed(grant.user_id)
            ended += 1
    return ended


def grants_notify_expiring(*, now: datetime | None = None) -> int:
    """Mail each holder whose grant ends within ACCESS["EXPIRY_NOTICE_DAYS"], once per expiry."""
    now = now or timezone.now()
    soon = now + timedelta(days=settings.ACCESS["EXPIRY_NOTICE_DAYS"])
    due = Grant.objects.filter(
        revoked_at=None, expires_at__gt=now, expires_at__lte=soon, expiry_notified_at=None
    ).select_related("gate", "user")
    sent = 0
    for grant in due:
        with transaction.atomic():
            if Grant.objects.filter(pk=grant.pk, expiry_notified_at=None).update(
                expiry_notified_at=now
            ):
                notify.grant_expiring(grant=grant)
                sent += 1
    return sent


def licence_publish(*, gate: Gate, title: str, text: str, by: Any = None) -> LicenceVersion:
    """Publish the next version of the gate's licence: every holder must accept it again."""
    with transaction.atomic():
        Gate.objects.select_for_update().filter(pk=gate.pk).first()  # versions in order
        newest = gate.licences.aggregate(newest=Max("version"))["newest"] or 0
        licence = LicenceVersion(gate=gate, version=newest + 1, title=title, text=text)
        licence.full_clean()
        licence.save()
        holders = list(
            Grant.objects.filter(gate=gate, revoked_at=None).values_list("user_id", "user__email")
        )
        audit_record(
            action="licence.published",
            gate=gate,
            actor=by,
            target=licence.pk,
            detail={"version": licence.version, "holders": len(holders)},
        )
        for user_id, _ in holders:
            access_changed(user_id)
        if newest:  # a first licence is accepted with the first request, nobody holds yet
            notify.licence_changed(gate=gate, emails=[email for _, email in holders])
    return licence


def licence_check(*, gate: Gate, licence_id: Any) -> LicenceVersion | None:
    """Return the gate's current licence if ``licence_id`` names it (or there is none)."""
    current = licence_current(gate=gate)
    if current is not None and str(licence_id) != str(current.pk):
        raise Conflict(
            "The licence changed while you were reading it: read the new version.",
            code="licence_changed",
        )
    return current


def licence_accept(*, user: Any, gate: Gate, licence_id: Any, caller: Caller = NOBODY) -> Grant:
    """Record that the holder accepted the gate's current licence; their grant works again."""
    current = licence_check(gate=gate, licence_id=licence_id)
    if current is None:
        raise Conflict("This gate has no licence to accept.", code="no_licence")
    with transaction.atomic():
        grant = (
            Grant.objects.select_for_update().filter(user=user, gate=gate, revoked_at=None).first()
        )
        if grant is None:
            raise PermissionDenied("You hold no access on this gate; request it first.")
        if grant.licence_version_id == current.pk:
            return grant
        grant.licence_version = current
        grant.save(update_fields=["licence_version", "updated_at"])
        audit_own(
            action="licence.accepted",
            user=user,
            gate=gate,
            target=grant.pk,
            caller=caller,
            version=current.version,
        )
        access_changed(user.pk)
    return grant
