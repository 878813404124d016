"""The compare sessions the sidebar lists beside the user's conversations."""

from __future__ import annotations

from typing import Any

from django import template

from webapp.arena.compare.selectors import SIDEBAR_SESSIONS, compare_list

register = template.Library()


@register.simple_tag(takes_context=True)
def compare_sessions(context: template.Context) -> list[Any]:
    """Return the user's most recent compare sessions (one query, only where shown)."""
    request = context.get("request")
    if request is None:
        return []
    return list(compare_list(user=request.user, limit=SIDEBAR_SESSIONS))
