"""Pages: the model picker with the conversation list, and one conversation."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from webapp.catalog.policy import access_refusal
from webapp.catalog.selectors import model_get_usable, model_list_usable
from webapp.core.errors import ApplicationError, NotFound

from . import selectors, services
from .forms import StartForm


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "chat/home.html", _page(request, form=StartForm()))


@login_required
@require_POST
def conversation_new(request: HttpRequest) -> HttpResponse:
    form = StartForm(request.POST)
    if form.is_valid():
        model = model_get_usable(user=request.user, slug=form.cleaned_data["model"], action="chat")
        if model is None:
            form.add_error("model", "Choose a model you have access to.")
        else:
            try:
                sent = services.conversation_start(
                    user=request.user, model=model, content=form.cleaned_data["content"]
                )
            except ApplicationError as exc:
                form.add_error(None, exc.detail)
            else:
                return redirect(sent.user_message.conversation)
    return render(request, "chat/home.html", _page(request, form=form), status=400)


@login_required
def conversation_detail(request: HttpRequest, conversation_id: str) -> HttpResponse:
    try:
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    path = selectors.message_path(conversation=conversation)
    return render(
        request,
        "chat/conversation.html",
        _page(
            request,
            conversation=conversation,
            chat_messages=path,
            messages_data=[selectors.message_serialize(m) for m in path],
            # The history stays the user's to read; only sending needs the model.
            refusal=access_refusal(
                user=request.user, model_or_gate=conversation.model, action="chat"
            ),
        ),
    )


def _page(request: HttpRequest, **context: object) -> dict[str, object]:
    return {"models": model_list_usable(user=request.user, action="chat"), **context}
