"""The playground page and the JSON calls its script makes (CSRF-checked POSTs): run a
completion, the same request as code, a chat template rendered, presets."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from webapp.access.services.audit import Caller, audit_refused_use
from webapp.catalog.policy import AccessRefused
from webapp.core.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from webapp.generations.limits import LimitReached

from . import services
from .code import code_snippets
from .page import page_context

MAX_BODY = 1_000_000  # bytes: a prompt at the longest context, with its parameters


@require_GET
@never_cache
@login_required
def playground(request: HttpRequest) -> HttpResponse:
    return render(request, "playground/playground.html", page_context(request))


def _json_call(view: Any) -> Any:
    """Run ``view`` with the request's JSON body; answer errors as ``{"error": …}``."""

    @login_required
    @require_POST
    def call(request: HttpRequest, *args: Any) -> JsonResponse:
        data: Any = {}
        try:
            data = _body(request)
            return JsonResponse(view(request, data, *args))
        except ApplicationError as exc:
            if isinstance(exc, AccessRefused):  # an attempt the rule refused is audited
                audit_refused_use(user=request.user, refused=exc, caller=Caller.of(request))
            return JsonResponse({"error": _error(exc, data)}, status=_status(exc))

    call.__name__ = view.__name__
    call.__doc__ = view.__doc__
    return call


def _body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_BODY:
        raise ValidationFailed("The request is too large.")
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, RecursionError) as exc:
        raise ValidationFailed("The body must be JSON.") from exc
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.")
    return data


def _status(exc: ApplicationError) -> int:
    if isinstance(exc, LimitReached):
        return 429
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, ValidationFailed):
        return 400
    return 502  # the model's server failed (a chat template that could not be rendered)


def _error(exc: ApplicationError, data: Any) -> dict[str, Any]:
    """The error, with the parameter it names (``temperature must be…``) as ``param``."""
    error = exc.as_dict()
    params = data.get("params") if isinstance(data, dict) else None
    first = exc.detail.split(" ", 1)[0]
    if isinstance(params, dict) and first in params:
        error["param"] = first
    return error


@_json_call
def complete(request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
    generation = services.playground_complete(
        user=request.user,
        slug=data.get("model"),
        prompt=data.get("prompt"),
        params=data.get("params", {}),
    )
    return {"generation": str(generation.pk), "params": generation.params}


@_json_call
def code(request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
    """Return the request the form makes as curl, the openai SDK and the backend's client."""
    model = services.playground_model(user=request.user, slug=data.get("model"))
    params = services.playground_params(model=model, params=data.get("params", {}))
    prompt = data.get("prompt")
    if not isinstance(prompt, str):
        raise ValidationFailed("The prompt must be text.")
    backend_url, keyed = _backend(model)
    snippets = code_snippets(
        model=model,
        prompt=prompt,
        params=params,
        api_base=request.build_absolute_uri("/v1"),
        backend_url=backend_url,
        backend_keyed=keyed,
    )
    return {
        "curl": snippets.curl,
        "openai": snippets.openai,
        "backend": snippets.backend,
        "backend_title": snippets.backend_title,
        "left_out": snippets.left_out,
    }


def _backend(model: Any) -> tuple[str, bool]:
    """The model's server, as every reply's details show it (its URL holds no credentials),
    and whether it wants an API key (never shown)."""
    endpoint = model.endpoints.filter(is_active=True).order_by("-healthy", "created_at").first()
    if endpoint is not None:
        return endpoint.url, bool(endpoint.api_key)
    return (
        "http://tgi-server:8080" if model.backend == "tgi" else "http://model-server:8000"
    ), False


@_json_call
def chat_template(request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
    text = services.chat_template_render(
        user=request.user, slug=data.get("model"), messages=data.get("messages")
    )
    return {"prompt": text}


@_json_call
def preset_save(request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
    preset = services.preset_save(
        user=request.user,
        name=data.get("name"),
        slug=data.get("model"),
        prompt=data.get("prompt", ""),
        params=data.get("params", {}),
    )
    url = reverse("playground:page") + f"?preset={preset.pk}"
    return {"preset": {"id": str(preset.pk), "name": preset.name, "url": url}}


@login_required
@require_POST
def preset_delete(request: HttpRequest, preset_id: str) -> HttpResponse:
    try:
        services.preset_delete(user=request.user, preset_id=preset_id)
    except NotFound as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, "Preset deleted.")
    return redirect("playground:page")
