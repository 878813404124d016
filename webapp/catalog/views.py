from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from .policy import model_can_use
from .selectors import model_get_usable


def model_detail(request: HttpRequest, slug: str) -> HttpResponse:
    model = model_get_usable(user=request.user, slug=slug, action="view")
    if model is None:
        raise Http404("No such model.")
    can_chat = model_can_use(user=request.user, model=model, action="chat")
    return render(request, "catalog/model_detail.html", {"model": model, "can_chat": can_chat})
