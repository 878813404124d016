"""Access requests: submit (with automatic approval), withdraw, approve, reject."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateformat import format as date_format

from webapp.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from webapp.core.ids import is_uuid

from ..models import AccessRequest, Gate, Grant, RequestKind, RequestStatus
from ..selectors.gates import cooldown_until, gate_can_review
from . import notify
from .audit import NOBODY, Caller, audit_own, audit_record
from .grants import default_expiry, grant_give, licence_check, reason_clean

MAX_ANSWERS_BYTES = 64 * 1024  # every answer together, as stored


def verified_domains(user: Any) -> set[str]:
    from allauth.account.models import EmailAddress

    emails = EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)
    return {email.rsplit("@", 1)[-1].lower() for email in emails}


def domain_approved(gate: Gate, user: Any) -> bool:
    """Whether a verified address of ``user`` is at one of the gate's domains (or below one)."""
    listed = gate.domains()
    return any(d == ok or d.endswith("." + ok) for d in verified_domains(user) for ok in listed)


def access_request_submit(
    *,
    user: Any,
    gate: Gate,
    levels: Iterable[str],
    answers: Mapping[str, Any],
    licence_id: Any,
    caller: Caller = NOBODY,
) -> AccessRequest:
    """Save a request, approve at once what the gate approves automatically, queue the rest."""
    levels = _levels_check(gate, levels)
    _answers_check(gate, answers)
    licence = licence_check(gate=gate, licence_id=licence_id)
    _may_apply(user, gate)
    auto = set(levels) if domain_approved(gate, user) else _auto_levels(gate) & set(levels)
    try:
        with transaction.atomic():
            request = AccessRequest.objects.create(
                gate=gate, user=user, levels=levels, answers=dict(answers), licence_version=licence
            )
            version = licence.version if licence else None
            own = {"user": user, "gate": gate, "target": request.pk, "caller": caller}
            audit_own(action="request.submitted", levels=levels, licence_version=version, **own)
            if licence is not None:
                audit_own(action="licence.accepted", version=version, **own)
            grant = _auto_approve(request, auto, caller) if auto else None
            notify.request_submitted(request=request)
            if not request.is_pending:
                notify.request_decided(request=request, grant=grant)
    except IntegrityError as exc:  # a second submit raced the first
        raise Conflict("You have a request waiting for review already.", code="pending") from exc
    return request


def _levels_check(gate: Gate, levels: Iterable[str]) -> list[str]:
    asked = sorted(set(levels))
    offered = {row.level for row in gate.levels.all() if row.requestable}
    if not asked:
        raise ValidationFailed("Choose at least one level of access.", code="no_level")
    if unknown := [level for level in asked if level not in offered]:
        raise ValidationFailed(
            f"This gate does not offer {', '.join(unknown)} access on request.", code="bad_level"
        )
    return asked


def _answers_check(gate: Gate, answers: Mapping[str, Any]) -> None:
    names = {field.name for field in gate.fields.all()}
    if unknown := sorted(set(answers) - names):
        raise ValidationFailed(
            f"This gate's form has no field {', '.join(unknown)}.", code="unknown_field"
        )
    if len(json.dumps(dict(answers), default=str)) > MAX_ANSWERS_BYTES:
        raise ValidationFailed("The answers are too long.", code="too_large")


def _may_apply(user: Any, gate: Gate) -> None:
    if not gate.is_open:
        raise PermissionDenied(f"{gate.name} does not take requests at the moment.")
    if AccessRequest.objects.filter(user=user, gate=gate, status=RequestStatus.PENDING).exists():
        raise Conflict("You have a request waiting for review already.", code="pending")
    until = cooldown_until(gate=gate, user=user, now=timezone.now())
    if until is not None:
        when = date_format(timezone.localtime(until), "j F Y, H:i")
        raise Conflict(f"You may apply again from {when}.", code="cooldown")


def _auto_levels(gate: Gate) -> set[str]:
    return {row.level for row in gate.levels.all() if row.auto_approve}


def _auto_approve(request: AccessRequest, levels: set[str], caller: Caller) -> Grant:
    grant = grant_give(
        user=request.user,
        gate=request.gate,
        levels=levels,
        licence=request.licence_version,
        expires_at=default_expiry(request.gate),
        request=request,
        caller=caller,
    )
    request.approved_levels = sorted(levels)
    if levels >= set(request.levels):
        request.status, request.decided_at = RequestStatus.APPROVED, timezone.now()
        request.auto_decided = True
    request.save()
    audit_record(
        action="request.approved" if not request.is_pending else "request.partly_approved",
        gate=request.gate,
        subject=request.user,
        target=request.pk,
        detail={"levels": request.approved_levels, "automatic": True},
        caller=caller,
    )
    return grant


def renewal_request_create(
    *, user: Any, gate: Gate, grant: Grant, caller: Caller = NOBODY
) -> AccessRequest:
    """A renewal for review: the same levels, the last answers; the grant runs meanwhile."""
    if AccessRequest.objects.filter(user=user, gate=gate, status=RequestStatus.PENDING).exists():
        raise Conflict("Your renewal is waiting for review already.", code="pending")
    last = AccessRequest.objects.filter(user=user, gate=gate).first()
    request = AccessRequest.objects.create(
        gate=gate,
        user=user,
        kind=RequestKind.RENEWAL,
        levels=grant.levels,
        answers=last.answers if last else {},
        licence_version=grant.licence_version,
    )
    audit_own(
        action="request.submitted",
        user=user,
        gate=gate,
        target=request.pk,
        caller=caller,
        levels=grant.levels,
        renewal=True,
    )
    notify.request_submitted(request=request)
    return request


def access_request_withdraw(*, user: Any, request_id: Any, caller: Caller = NOBODY) -> None:
    if not user.is_authenticated or not is_uuid(request_id):
        raise NotFound("There is no such request.")
    with transaction.atomic():
        request = (
            AccessRequest.objects.select_for_update()
            .select_related("gate")
            .filter(pk=request_id, user=user)
            .first()
        )
        if request is None:
            raise NotFound("There is no such request.")
        if not request.is_pending:
            raise Conflict("Only a request waiting for review can be withdrawn.", code="decided")
        request.status, request.decided_at = RequestStatus.WITHDRAWN, timezone.now()
        request.save(update_fields=["status", "decided_at", "updated_at"])
        audit_own(
            action="request.withdrawn",
            user=user,
            gate=request.gate,
            target=request.pk,
            caller=caller,
        )


def _pending_for(reviewer: Any, request_ids: Iterable[Any]) -> list[AccessRequest]:
    """Lock the named requests; all must be pending and on gates ``reviewer`` reviews."""
    ids = list(dict.fromkeys(str(i) for i in request_ids))
    if not ids:
        raise ValidationFailed("Choose at least one request.", code="none_chosen")
    if not all(is_uuid(i) for i in ids):
        raise NotFound("There is no such request.")
    requests = list(
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related("gate", "user", "licence_version")
        .filter(pk__in=ids)
    )
    if len(requests) != len(ids) or not all(
        gate_can_review(user=reviewer, gate=r.gate) for r in requests
    ):
        raise NotFound("There is no such request.")
    if decided := [r for r in requests if not r.is_pending]:
        raise Conflict(
            f"{len(decided)} of these requests were decided already; reload the queue.",
            code="decided",
        )
    return requests


def access_requests_approve(
    *,
    reviewer: Any,
    request_ids: Iterable[Any],
    levels: Iterable[str] | None = None,
    expires_at: datetime | None = None,
    caller: Caller = NOBODY,
) -> list[Grant]:
    """Approve every named request, all or none; ``levels`` narrows what each asked for."""
    chosen = None if levels is None else set(levels)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed("Choose an expiry in the future.", code="bad_expiry")
    grants = []
    with transaction.atomic():
        for request in _pending_for(reviewer, request_ids):
            give = set(request.levels) if chosen is None else set(request.levels) & chosen
            if not give:
                raise ValidationFailed(
                    f"{request.user.email} did not ask for any of the levels chosen.",
                    code="bad_level",
                )
            grant = grant_give(
                user=request.user,
                gate=request.gate,
                levels=give,
                licence=request.licence_version,
                expires_at=expires_at or default_expiry(request.gate),
                by=reviewer,
                request=request,
                caller=caller,
            )
            _decide(request, reviewer, RequestStatus.APPROVED, sorted(give), "", caller)
            notify.request_decided(request=request, grant=grant)
            grants.append(grant)
    return grants


def access_requests_reject(
    *, reviewer: Any, request_ids: Iterable[Any], reason: Any, caller: Caller = NOBODY
) -> list[AccessRequest]:
    """Reject every named request, all or none, with the reason each requester is told."""
    reason = reason_clean(reason)
    with transaction.atomic():
        requests = _pending_for(reviewer, request_ids)
        for request in requests:
            _decide(request, reviewer, RequestStatus.REJECTED, [], reason, caller)
            notify.request_decided(request=request, grant=None)
    return requests


def _decide(
    request: AccessRequest,
    reviewer: Any,
    status: str,
    levels: list[str],
    reason: str,
    caller: Caller,
) -> None:
    request.status, request.reviewer, request.reason = status, reviewer, reason
    request.approved_levels = sorted(set(request.approved_levels) | set(levels))
    request.decided_at = timezone.now()
    request.save()
    audit_record(
        action=f"request.{status}",
        gate=request.gate,
        actor=reviewer,
        subject=request.user,
        target=request.pk,
        detail={"levels": levels, "reason": reason} if reason else {"levels": levels},
        caller=caller,
    )
