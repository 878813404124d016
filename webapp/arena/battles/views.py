"""The arena's pages and its three writes (start, next turn, vote), which answer JSON.

Before the vote nothing here names a battle's models: the page and every
response carry "Model A" and "Model B" only (see selectors.battle_state).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from webapp.access.services.audit import Caller, audit_refused_use
from webapp.core.errors import (
    ApplicationError,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from webapp.generations.limits import LimitReached

from . import selectors, services
from .pairing import NOT_ENOUGH_MODELS, arena_candidates

STATUS = {
    LimitReached: 429,
    NotFound: 404,
    PermissionDenied: 403,
    ValidationFailed: 400,
    Conflict: 409,
}


def _status(exc: ApplicationError) -> int:
    return next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)


def _json_errors(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    """Answer a signed-out caller and any refusal with a JSON error body (nothing changed)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        if not request.user.is_authenticated:
            error = {"code": "sign_in", "detail": "Sign in to take part in the arena."}
            return JsonResponse({"error": error}, status=401)
        try:
            return view(request, *args, **kwargs)
        except ApplicationError as exc:
            if isinstance(exc, services.SideRefused):
                audit_refused_use(user=request.user, refused=exc.refused, caller=Caller.of(request))
            return JsonResponse({"error": exc.as_dict()}, status=_status(exc))

    return wrapped


@never_cache
@login_required
def arena_home(request: HttpRequest) -> HttpResponse:
    page = _page(request, battle=None, state=None)
    if len(arena_candidates(user=request.user)) < 2:
        page["unavailable"] = NOT_ENOUGH_MODELS
    return render(request, "arena/battle.html", page)


@never_cache
@login_required
def battle_detail(request: HttpRequest, battle_id: UUID) -> HttpResponse:
    try:
        battle = selectors.battle_get(user=request.user, battle_id=battle_id)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    state = selectors.battle_state(battle=battle, turns=selectors.battle_turns(battle=battle))
    return render(request, "arena/battle.html", _page(request, battle=battle, state=state))


def _page(request: HttpRequest, *, battle: Any, state: Any) -> dict[str, Any]:
    # The list names the models of past battles: not beside a battle still to be voted.
    blind = battle is not None and battle.voted_at is None
    return {
        "battle": battle,
        "state": state,
        "max_turns": settings.ARENA_MAX_TURNS,
        "recent": [] if blind else selectors.battle_list(user=request.user, limit=10),
    }


@require_POST
@_json_errors
def battle_new(request: HttpRequest) -> JsonResponse:
    sent = services.battle_start(user=request.user, content=request.POST.get("content"))
    return _sent(sent)


@require_POST
@_json_errors
def battle_turn(request: HttpRequest, battle_id: UUID) -> JsonResponse:
    sent = services.battle_turn_send(
        user=request.user, battle_id=battle_id, content=request.POST.get("content")
    )
    return _sent(sent)


def _sent(sent: services.Sent) -> JsonResponse:
    battle_id = str(sent.battle.pk)
    body = {
        "battle": battle_id,
        "url": reverse("battles:detail", kwargs={"battle_id": battle_id}),
        "turn": selectors.turn_serialize(sent.turn),
    }
    return JsonResponse(body, status=201)


@require_POST
@_json_errors
def battle_vote(request: HttpRequest, battle_id: UUID) -> JsonResponse:
    battle = services.battle_vote(
        user=request.user, battle_id=battle_id, winner=request.POST.get("winner")
    )
    return JsonResponse({"reveal": selectors.battle_reveal(battle=battle)})
