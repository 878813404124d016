"""The leaderboard page, staff's recompute button and the open-data export."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from .export import battle_lines
from .leaderboard import Trigger, leaderboard_compute, leaderboard_for, leaderboard_latest
from .leaderboard_charts import battle_count_heatmap, ratings_chart, win_fraction_heatmap

LEADERBOARD = "leaderboard:leaderboard"


def staff_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Send visitors to sign in; refuse signed-in members who are not staff (403)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            # After signing in, come back to the page: a POST cannot be replayed.
            back = request.get_full_path() if request.method == "GET" else reverse(LEADERBOARD)
            return redirect_to_login(back)
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied("Only staff may do this.")
        return view(request, *args, **kwargs)

    return wrapped


@require_GET
def leaderboard(request: HttpRequest) -> HttpResponse:
    latest = leaderboard_latest()
    context: dict[str, Any] = {"board": None}
    if latest is not None:
        board = leaderboard_for(user=request.user, leaderboard=latest)
        names = [model["name"] for model in board.models]
        context.update(
            board=board,
            ratings_chart=ratings_chart(board.rows),
            wins_heatmap=win_fraction_heatmap(names, board.wins),
            battles_heatmap=battle_count_heatmap(names, board.battles),
        )
    return render(request, "arena/leaderboard.html", context)


@require_POST
@staff_only
def recompute(request: HttpRequest) -> HttpResponse:
    board = leaderboard_compute(trigger=Trigger.STAFF)
    assert board is not None  # only the periodic job skips an unchanged board
    messages.success(
        request, f"Recomputed from {board.votes} votes in {board.seconds:.2f} seconds."
    )
    return redirect(LEADERBOARD)


@require_GET
@staff_only
def export(request: HttpRequest) -> StreamingHttpResponse:
    response = StreamingHttpResponse(battle_lines(), content_type="application/x-ndjson")
    name = f"arena-battles-{timezone.now():%Y%m%d}.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
