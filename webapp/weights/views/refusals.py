"""Refusals a person can read: an HTML page for a browser, plain text for curl and wget."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def wants_html(request: HttpRequest) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def refusal(
    request: HttpRequest, reason: str, *, status: int = 403, gate: Any = None
) -> HttpResponse:
    if wants_html(request):
        context = {"reason": reason, "gate": gate, "status": status}
        response = render(request, "weights/refused.html", context, status=status)
    else:
        response = HttpResponse(
            f"{reason}\n", status=status, content_type="text/plain; charset=utf-8"
        )
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="downloads"'
    response["Cache-Control"] = "no-store"
    return response
