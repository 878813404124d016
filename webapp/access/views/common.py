"""What the access views share: finding the gate, answering a refused action."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from webapp.core.errors import ApplicationError

from ..models import Gate
from ..selectors.gates import gate_get


def gate_or_404(slug: str) -> Gate:
    gate = gate_get(slug=slug)
    if gate is None:
        raise Http404("No such gate.")
    return gate


def refused(request: HttpRequest, exc: ApplicationError, to: str) -> HttpResponse:
    """Tell the person why the action was refused, on the page they came from."""
    messages.error(request, exc.detail)
    return redirect(to)
