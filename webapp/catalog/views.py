from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from .selectors import model_get_usable


def model_detail(request: HttpRequest, slug: str) -> HttpResponse:
    model = model_get_usable(user=request.user, slug=slug, action="view")
    if model is None:
        raise Http404("No such model.")
    return render(request, "catalog/model_detail.html", {"model": model})
