"""The account's Limits page: what the user may still ask of the models, and its JSON."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from webapp.generations.allowance import allowance_as_json, allowance_get


@require_GET
@never_cache
@login_required
def limits(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/limits.html", {"allowance": allowance_get(user=request.user)})


@require_GET
@never_cache
def limits_json(request: HttpRequest) -> JsonResponse:
    """The same figures for scripts; a request without a session gets 401, not a sign-in page."""
    if not request.user.is_authenticated:
        error = {"code": "unauthenticated", "detail": "Sign in to see your limits."}
        return JsonResponse({"error": error}, status=401)
    return JsonResponse(allowance_as_json(allowance_get(user=request.user)))
