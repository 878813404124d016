"""The reviewers' pages: the queue, decisions (several at once), holders and revocation."""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from webapp.core.errors import ApplicationError

from ..forms import ApproveForm, ReasonForm
from ..models import Level, Notify, RequestStatus, ReviewerSettings
from ..selectors.gates import gates_reviewable
from ..selectors.review import grants_reviewable, review_queue
from ..services.audit import Caller
from ..services.grants import grant_revoke
from ..services.requests import access_requests_approve, access_requests_reject
from ..services.reviewers import reviewer_settings_save


def reviewer_required(view: Any) -> Any:
    """Only people who review at least one gate see these pages; others get a 404."""

    @login_required
    @wraps(view)
    def check(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not gates_reviewable(user=request.user).exists():
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return check


def _filters(request: HttpRequest) -> dict[str, str]:
    get = request.GET
    return {
        "gate": get.get("gate", "")[:100],
        "status": get.get("status", RequestStatus.PENDING)[:16],
        "level": get.get("level", "")[:16],
        "q": get.get("q", "").strip()[:200],
    }


@reviewer_required
def queue(request: HttpRequest) -> HttpResponse:
    filters = _filters(request)
    settings_row = ReviewerSettings.objects.filter(user=request.user).first()
    context = {
        "access_requests": review_queue(reviewer=request.user, **filters),
        "filters": filters,
        "gates": gates_reviewable(user=request.user),
        "statuses": RequestStatus.choices,
        "levels": Level.choices,
        "approve_form": ApproveForm(),
        "reason_form": ReasonForm(),
        "now": timezone.now(),
        "notify": settings_row.notify if settings_row else Notify.IMMEDIATE,
        "notify_choices": Notify.choices,
    }
    return render(request, "access/review_queue.html", context)


@reviewer_required
@require_POST
def decide(request: HttpRequest) -> HttpResponse:
    back = reverse("access:review") + ("?" + request.GET.urlencode() if request.GET else "")
    ids = request.POST.getlist("request")
    decision = request.POST.get("decision")
    caller = Caller.of(request)
    try:
        if decision == "approve":
            form = ApproveForm(request.POST)
            if not form.is_valid():
                raise _invalid(form)
            grants = access_requests_approve(
                reviewer=request.user,
                request_ids=ids,
                levels=form.cleaned_data["levels"] or None,
                expires_at=form.expires_at(),
                caller=caller,
            )
            messages.success(request, f"Approved {len(grants)} request(s).")
        elif decision == "reject":
            form = ReasonForm(request.POST)
            if not form.is_valid():
                raise _invalid(form)
            rejected = access_requests_reject(
                reviewer=request.user,
                request_ids=ids,
                reason=form.cleaned_data["reason"],
                caller=caller,
            )
            messages.success(request, f"Rejected {len(rejected)} request(s).")
        else:
            messages.error(request, "Choose approve or reject.")
    except ApplicationError as exc:
        messages.error(request, exc.detail)
    return redirect(back)


def _invalid(form: Any) -> ApplicationError:
    from webapp.core.errors import ValidationFailed

    errors = [f"{e}" for field in form.errors.values() for e in field]
    return ValidationFailed(" ".join(errors) or "Check the form.")


@reviewer_required
def grants(request: HttpRequest) -> HttpResponse:
    filters = _filters(request)
    context = {
        "grants": grants_reviewable(reviewer=request.user, gate=filters["gate"], q=filters["q"]),
        "filters": filters,
        "gates": gates_reviewable(user=request.user),
        "reason_form": ReasonForm(),
        "now": timezone.now(),
    }
    return render(request, "access/review_grants.html", context)


@reviewer_required
@require_POST
def revoke(request: HttpRequest, grant_id: str) -> HttpResponse:
    form = ReasonForm(request.POST)
    try:
        if not form.is_valid():
            raise _invalid(form)
        grant = grant_revoke(
            reviewer=request.user,
            grant_id=grant_id,
            reason=form.cleaned_data["reason"],
            caller=Caller.of(request),
        )
    except ApplicationError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Revoked the access of {grant.user.email} to {grant.gate.name}.")
    return redirect("access:review_grants")


@reviewer_required
@require_POST
def notify_settings(request: HttpRequest) -> HttpResponse:
    try:
        reviewer_settings_save(user=request.user, notify=request.POST.get("notify"))
    except ApplicationError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, "Your notification setting was saved.")
    return redirect("access:review")
