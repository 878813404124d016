"""Read access to compare sessions."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from webapp.catalog.policy import access_refusal
from webapp.core.errors import NotFound
from webapp.core.ids import is_uuid
from webapp.generations.selectors import generation_summary

from .models import CompareColumn, CompareReply, CompareSession, CompareTurn

SIDEBAR_SESSIONS = 5


def compare_list(*, user: Any, limit: int = 50) -> QuerySet[CompareSession]:
    """Return the user's sessions, the most recently used first."""
    if not user.is_authenticated:
        return CompareSession.objects.none()
    return CompareSession.objects.filter(user=user).order_by("-updated_at")[:limit]


def compare_get(*, user: Any, session_id: Any) -> CompareSession:
    """Return the user's session with its columns, turns and replies (four queries), or
    raise NotFound: someone else's looks exactly like a missing one."""
    if not user.is_authenticated or not is_uuid(session_id):
        raise NotFound("There is no such compare session.")
    replies = CompareReply.objects.select_related("generation__language_model")
    session = (
        CompareSession.objects.filter(pk=session_id, user=user)
        .prefetch_related(
            Prefetch("columns", queryset=CompareColumn.objects.select_related("language_model")),
            Prefetch(
                "turns",
                queryset=CompareTurn.objects.prefetch_related(Prefetch("replies", replies)),
            ),
        )
        .first()
    )
    if session is None:
        raise NotFound("There is no such compare session.")
    return session


def compare_serialize(session: CompareSession, *, user: Any) -> dict[str, Any]:
    """Return what the page needs to show the session and resume its streams: each
    column's model (and why the user may no longer use it, if so), each turn with the
    columns' replies in column order."""
    columns = list(session.columns.all())
    return {
        "id": str(session.pk),
        "params": session.params,
        "columns": [
            {
                "id": str(c.pk),
                "model": {"slug": c.language_model.slug, "name": c.language_model.display_name},
                "refusal": access_refusal(user=user, model_or_gate=c.language_model, action="chat"),
            }
            for c in columns
        ],
        "turns": [_turn(t, columns) for t in session.turns.all()],
    }


def _turn(turn: CompareTurn, columns: list[CompareColumn]) -> dict[str, Any]:
    by_column = {r.column_id: r for r in turn.replies.all()}
    replies: list[dict[str, Any] | None] = []
    for column in columns:
        reply = by_column.get(column.pk)
        if reply is None:
            replies.append(None)
            continue
        generation = reply.generation
        replies.append({**generation_summary(generation), "text": generation.text})
    return {"id": str(turn.pk), "content": turn.content, "replies": replies}
