"""Mail about access: to requesters, reviewers and holders. Sent once the change commits.

Mail goes out in the process that made the change, after the commit (as the
account mail does); a mail server that fails is logged and never undoes the
decision it reports.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse

from ..models import AccessRequest, Gate, Grant, Notify

logger = logging.getLogger(__name__)


def site_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def _mail(to: Iterable[str], subject: str, template: str, context: dict[str, Any]) -> None:
    recipients = sorted({address for address in to if address})
    if not recipients:
        return
    body = render_to_string(
        f"access/email/{template}.txt",
        {
            "site_name": settings.SITE_NAME,
            "my_access_url": site_url(reverse("access:mine")),
            **context,
        },
    )
    subject = f"[{settings.SITE_NAME}] {subject}"

    def send() -> None:
        for address in recipients:  # one each: reviewers never see each other's addresses
            try:
                send_mail(subject, body, None, [address])
            except Exception:
                logger.exception("access mail %r to one recipient failed", template)

    transaction.on_commit(send)


def gate_reviewers(*, gate: Gate) -> QuerySet:
    """Who is told about the gate's requests: its reviewer group, or staff if it has none."""
    users = get_user_model().objects.filter(is_active=True)
    if gate.reviewer_group_id:
        return users.filter(groups=gate.reviewer_group_id)
    return users.filter(is_staff=True)


def _wants(users: QuerySet, notify: str) -> QuerySet:
    if notify == Notify.IMMEDIATE:  # the default: no settings saved yet
        return users.filter(Q(reviewer_settings__isnull=True) | Q(reviewer_settings__notify=notify))
    return users.filter(reviewer_settings__notify=notify)


def request_submitted(*, request: AccessRequest) -> None:
    gate = request.gate
    context = {"request": request, "gate": gate, "gate_url": site_url(gate.get_absolute_url())}
    _mail([request.user.email], f"Your request for {gate.name}", "submitted", context)
    if request.is_pending:
        reviewers = _wants(gate_reviewers(gate=gate), Notify.IMMEDIATE)
        context["queue_url"] = site_url(reverse("access:review") + f"?gate={gate.slug}")
        emails = reviewers.exclude(pk=request.user_id).values_list("email", flat=True)
        _mail(emails, f"New access request for {gate.name}", "new_request", context)


def request_decided(*, request: AccessRequest, grant: Grant | None) -> None:
    gate = request.gate
    context = {
        "request": request,
        "gate": gate,
        "grant": grant,
        "gate_url": site_url(gate.get_absolute_url()),
    }
    subject = f"Your request for {gate.name} was {request.status}"
    _mail([request.user.email], subject, "decided", context)


def grant_revoked(*, grant: Grant) -> None:
    context = {"grant": grant, "gate": grant.gate}
    _mail([grant.user.email], f"Your access to {grant.gate.name} was revoked", "revoked", context)


def grant_expiring(*, grant: Grant) -> None:
    gate = grant.gate
    context = {"grant": grant, "gate": gate, "renew_url": site_url(gate.get_absolute_url())}
    _mail([grant.user.email], f"Your access to {gate.name} ends soon", "expiring", context)


def licence_changed(*, gate: Gate, emails: Iterable[str]) -> None:
    context = {"gate": gate, "licence_url": site_url(reverse("access:licence", args=[gate.slug]))}
    _mail(emails, f"The licence of {gate.name} has changed", "licence_changed", context)


def reviewer_digest(*, reviewer: Any, requests: list[AccessRequest]) -> None:
    context = {
        "reviewer": reviewer,
        "requests": requests,
        "queue_url": site_url(reverse("access:review")),
    }
    count = len(requests)
    subject = f"{count} access request{'s' if count != 1 else ''} waiting for review"
    _mail([reviewer.email], subject, "digest", context)
