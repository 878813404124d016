"""The requester's pages: the request form, their own requests and grants, renewal, licence."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from webapp.core.errors import ApplicationError

from ..forms import AccessRequestForm
from ..selectors.gates import gates_reviewable, grants_of, requests_of, standing_get
from ..services.audit import Caller
from ..services.grants import grant_renew, licence_accept
from ..services.requests import access_request_submit, access_request_withdraw
from .common import gate_or_404, refused


@login_required
def request_form(request: HttpRequest, slug: str) -> HttpResponse:
    gate = gate_or_404(slug)
    standing = standing_get(user=request.user, gate=gate)
    form = AccessRequestForm(request.POST or None, gate=gate, licence=standing.licence)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                made = access_request_submit(
                    user=request.user,
                    gate=gate,
                    levels=form.cleaned_data["levels"],
                    answers=form.answers(),
                    licence_id=form.cleaned_data.get("licence"),
                    caller=Caller.of(request),
                )
            except ApplicationError as exc:
                form.add_error(None, exc.detail)
            else:
                done = "approved" if not made.is_pending else "sent: a reviewer will decide"
                messages.success(request, f"Your request for {gate.name} was {done}.")
                return redirect("access:mine")
    context = {"gate": gate, "form": form, "standing": standing, "licence": standing.licence}
    return render(request, "access/request_form.html", context, status=status)


@login_required
def mine(request: HttpRequest) -> HttpResponse:
    context = {
        "access_requests": requests_of(user=request.user),
        "grants": grants_of(user=request.user),
        "reviews": gates_reviewable(user=request.user).exists(),
    }
    return render(request, "access/mine.html", context)


@login_required
@require_POST
def withdraw(request: HttpRequest, request_id: str) -> HttpResponse:
    try:
        access_request_withdraw(user=request.user, request_id=request_id, caller=Caller.of(request))
    except ApplicationError as exc:
        return refused(request, exc, reverse("access:mine"))
    messages.success(request, "Your request was withdrawn.")
    return redirect("access:mine")


@login_required
@require_POST
def renew(request: HttpRequest, slug: str) -> HttpResponse:
    gate = gate_or_404(slug)
    try:
        renewed = grant_renew(user=request.user, gate=gate, caller=Caller.of(request))
    except ApplicationError as exc:
        return refused(request, exc, gate.get_absolute_url())
    if getattr(renewed, "is_pending", False):
        messages.success(request, "Your renewal was sent to the reviewers; access runs meanwhile.")
    else:
        messages.success(request, f"Your access to {gate.name} was renewed.")
    return redirect(gate.get_absolute_url())


@login_required
def licence(request: HttpRequest, slug: str) -> HttpResponse:
    """Read the gate's current licence and accept it again (holders, after a new version)."""
    gate = gate_or_404(slug)
    standing = standing_get(user=request.user, gate=gate)
    if request.method == "POST":
        if request.POST.get("accept") != "on":
            messages.error(request, "Tick the box to accept the licence.")
            return redirect("access:licence", slug=gate.slug)
        try:
            licence_accept(
                user=request.user,
                gate=gate,
                licence_id=request.POST.get("licence"),
                caller=Caller.of(request),
            )
        except ApplicationError as exc:
            return refused(request, exc, reverse("access:licence", args=[gate.slug]))
        messages.success(request, f"You accepted the licence of {gate.name}; access is back.")
        return redirect(gate.get_absolute_url())
    return render(
        request,
        "access/licence.html",
        {"gate": gate, "standing": standing, "licence": standing.licence},
    )
