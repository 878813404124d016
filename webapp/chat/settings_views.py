"""Pages: a conversation's settings, and presets (save, publish, delete, list)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from webapp.catalog.selectors import model_list_usable
from webapp.core.errors import ApplicationError, NotFound

from . import configure, selectors, views
from .forms import PresetForm, SettingsForm
from .models import Conversation


def _conversation(request: HttpRequest, conversation_id: object) -> Conversation:
    try:
        return selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    except NotFound as exc:
        raise Http404(exc.detail) from exc


@login_required
@require_POST
def conversation_settings(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = _conversation(request, conversation_id)
    models = model_list_usable(user=request.user, action="chat")
    form = SettingsForm(request.POST, conversation=conversation, models=models)
    if form.is_valid():
        try:
            configure.conversation_configure(
                user=request.user,
                conversation_id=conversation.pk,
                system_prompt=form.cleaned_data["system_prompt"],
                params=form.params(),
                model_slug=form.cleaned_data["model"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(request, "Settings saved: they apply to the next reply.")
            return redirect(conversation)
    conversation = _conversation(request, conversation_id)  # as saved: nothing changed
    return views.conversation_page(request, conversation, settings_form=form, status=400)


@login_required
@require_POST
def preset_create(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = _conversation(request, conversation_id)
    form = PresetForm(request.POST)
    if form.is_valid():
        try:
            preset = configure.preset_create(
                user=request.user,
                conversation_id=conversation.pk,
                name=form.cleaned_data["name"],
                public=form.cleaned_data["public"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(request, f"Saved the preset {preset.name!r}.")
            return redirect(conversation)
    return views.conversation_page(request, conversation, preset_form=form, status=400)


@login_required
def preset_list(request: HttpRequest) -> HttpResponse:
    presets = selectors.preset_list(user=request.user).select_related("user")
    return render(request, "chat/presets.html", {"presets": presets})


@login_required
@require_POST
def preset_publish(request: HttpRequest, preset_id: str) -> HttpResponse:
    public = request.POST.get("public") == "true"
    try:
        configure.preset_publish(user=request.user, preset_id=preset_id, public=public)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    except ApplicationError as exc:
        messages.error(request, exc.detail)
        return redirect("chat:presets")
    messages.success(request, "Published for everyone." if public else "No longer published.")
    return redirect("chat:presets")


@login_required
@require_POST
def preset_delete(request: HttpRequest, preset_id: str) -> HttpResponse:
    try:
        configure.preset_delete(user=request.user, preset_id=preset_id)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    messages.success(request, "Preset deleted.")
    return redirect("chat:presets")
