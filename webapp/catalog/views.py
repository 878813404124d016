from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from .models import AccessPolicy
from .policy import access_refusal, model_can_use
from .selectors import model_get


def model_detail(request: HttpRequest, slug: str) -> HttpResponse:
    model = model_get(slug=slug)
    if model is None:
        raise Http404("No such model.")
    refusal = access_refusal(user=request.user, model_or_gate=model, action="view")
    if refusal is not None:
        if model.access_policy == AccessPolicy.PRIVATE:
            raise Http404("No such model.")  # a private model is not shown to outsiders at all
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        context = {"model": model, "refusal": refusal}
        return render(request, "catalog/model_refused.html", context, status=403)
    can_chat = model_can_use(user=request.user, model=model, action="chat")
    chat_refusal = (
        None if can_chat else access_refusal(user=request.user, model_or_gate=model, action="chat")
    )
    context = {"model": model, "can_chat": can_chat, "chat_refusal": chat_refusal}
    return render(request, "catalog/model_detail.html", context)
