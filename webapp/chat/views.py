"""Pages: the model picker with the conversation list, and one conversation."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from webapp.access.services.audit import Caller, audit_refused_use
from webapp.catalog.policy import AccessRefused, access_refusal
from webapp.catalog.selectors import model_get, model_get_usable, model_list_usable
from webapp.core.errors import ApplicationError, NotFound
from webapp.generations.limits import LimitReached

from . import selectors, services
from .forms import StartForm
from .models import Conversation
from .pages import conversation_context


@login_required
def home(request: HttpRequest) -> HttpResponse:
    form = StartForm(initial={"preset": request.GET.get("preset")})
    return render(request, "chat/home.html", _page(request, form=form, **_presets(request)))


@login_required
@require_POST
def conversation_new(request: HttpRequest) -> HttpResponse:
    form = StartForm(request.POST)
    limited = False
    if form.is_valid():
        model = model_get_usable(user=request.user, slug=form.cleaned_data["model"], action="chat")
        preset_id = form.cleaned_data["preset"]
        preset = preset_id and selectors.preset_get_usable(user=request.user, preset_id=preset_id)
        if model is None:
            _record_refusal(request, slug=form.cleaned_data["model"])
            form.add_error("model", "Choose a model you have access to.")
        elif preset_id and preset is None:
            form.add_error("preset", "Choose one of your presets or a published one.")
        else:
            try:
                sent = services.conversation_start(
                    user=request.user,
                    model=model,
                    content=form.cleaned_data["content"],
                    preset=preset or None,
                )
            except ApplicationError as exc:
                form.add_error(None, exc.detail)
                limited = isinstance(exc, LimitReached)
                if isinstance(exc, AccessRefused):
                    audit_refused_use(user=request.user, refused=exc, caller=Caller.of(request))
            else:
                return redirect(sent.user_message.conversation)
    page = _page(request, form=form, limit_refused=limited, **_presets(request))
    return render(request, "chat/home.html", page, status=429 if limited else 400)


def _record_refusal(request: HttpRequest, *, slug: str) -> None:
    """An attempt to start a chat with a model the rule refuses goes into the audit log."""
    model = model_get(slug=slug)
    refusal = model and access_refusal(user=request.user, model_or_gate=model, action="chat")
    if model is not None and refusal:
        refused = AccessRefused(refusal, model=model, action="chat")
        audit_refused_use(user=request.user, refused=refused, caller=Caller.of(request))


@login_required
def conversation_detail(request: HttpRequest, conversation_id: str) -> HttpResponse:
    try:
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    return conversation_page(request, conversation)


def conversation_page(
    request: HttpRequest, conversation: Conversation, *, status: int = 200, **forms: Any
) -> HttpResponse:
    """Render the conversation on the branch last viewed (``forms``: ones to show with errors)."""
    context = conversation_context(
        user=request.user, conversation=conversation, anchor_id=request.GET.get("m"), **forms
    )
    # The history stays the user's to read; only sending needs the model.
    context["refusal"] = access_refusal(
        user=request.user, model_or_gate=conversation.model, action="chat"
    )
    return render(request, "chat/conversation.html", _page(request, **context), status=status)


def _presets(request: HttpRequest) -> dict[str, object]:
    return {"presets": list(selectors.preset_list(user=request.user))}


def _page(request: HttpRequest, **context: object) -> dict[str, object]:
    return {"models": model_list_usable(user=request.user, action="chat"), **context}
