"""Read the sidebar: pages of conversations grouped by date, and full-text search."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from webapp.chat.models import Conversation, Message, Role
from webapp.generations.models import Generation

GROUPS = ("Pinned", "Today", "Yesterday", "Previous 7 days", "Older")
SEARCH_CONFIG = "english"  # must match the indexes of migration 0003
MAX_QUERY_CHARS = 200


@dataclass(frozen=True)
class Page:
    items: list[tuple[str, Conversation]]  # (group, conversation), in display order
    next_before: str | None  # the cursor of the next page, None at the end


@dataclass(frozen=True)
class Hit:
    conversation: Conversation
    message_id: Any  # None when only the title matched
    snippet: str


def kept(user: Any) -> QuerySet[Conversation]:
    """Return the user's conversations that are not deleted."""
    return Conversation.objects.filter(user=user, deleted_at__isnull=True)


def conversation_page(*, user: Any, before: Any = None, size: int | None = None) -> Page:
    """Return one page of the sidebar: the pinned conversations first (on the first page),
    then the others newest first, older than the cursor ``before``."""
    size = size or settings.CHAT_SIDEBAR_PAGE
    base = kept(user).only("id", "title", "updated_at", "pinned")
    cursor = _cursor(before)
    rows: list[Conversation] = []
    if cursor is None:
        rows = list(base.filter(pinned=True).order_by("-updated_at"))
    others = base.filter(pinned=False).order_by("-updated_at", "-id")
    if cursor is not None:
        others = others.filter(updated_at__lt=cursor)
    batch = list(others[: size + 1])
    more = len(batch) > size
    batch = batch[:size]
    today = timezone.localdate()
    items = [(_group(c, today), c) for c in rows + batch]
    next_before = batch[-1].updated_at.isoformat() if more else None
    return Page(items=items, next_before=next_before)


def _cursor(before: Any) -> dt.datetime | None:
    if not before:
        return None
    try:
        value = dt.datetime.fromisoformat(str(before))
    except ValueError:
        return None
    return value if timezone.is_aware(value) else timezone.make_aware(value)


def _group(conversation: Conversation, today: dt.date) -> str:
    if conversation.pinned:
        return GROUPS[0]
    days = (today - timezone.localdate(conversation.updated_at)).days
    if days <= 0:
        return GROUPS[1]
    if days == 1:
        return GROUPS[2]
    return GROUPS[3] if days <= 7 else GROUPS[4]


def conversation_search(*, user: Any, query: str, limit: int = 20) -> list[Hit]:
    """Return the user's conversations whose title or messages match ``query``, newest first,
    each with its first matching message (the one to open the conversation at)."""
    query = " ".join(str(query or "").split())[:MAX_QUERY_CHARS]
    if not query:
        return []
    if connection.vendor == "postgresql":
        messages, titles = _matches_postgres(user, query)
    else:
        messages, titles = _matches_plain(user, query)
    found: dict[Any, Hit] = {}
    for message in messages.select_related("conversation", "generation").order_by("-created_at")[
        : limit * 5
    ]:
        if message.conversation_id not in found:
            found[message.conversation_id] = Hit(
                message.conversation, message.pk, _snippet(message.text, query)
            )
    for conversation in titles.order_by("-updated_at")[:limit]:
        found.setdefault(conversation.pk, Hit(conversation, None, conversation.title))
    hits = sorted(found.values(), key=lambda h: h.conversation.updated_at, reverse=True)
    return hits[:limit]


def _in_kept(user: Any) -> QuerySet[Message]:
    return Message.objects.filter(conversation__user=user, conversation__deleted_at__isnull=True)


def _matches_postgres(user: Any, query: str) -> tuple[QuerySet[Message], QuerySet[Conversation]]:
    from django.contrib.postgres.search import SearchQuery, SearchVector

    wanted = SearchQuery(query, config=SEARCH_CONFIG, search_type="websearch")

    def matching(qs: QuerySet[Any], field: str) -> QuerySet[Any]:
        return qs.annotate(_v=SearchVector(field, config=SEARCH_CONFIG)).filter(_v=wanted)

    # Two index scans, not one OR across a join: user words live on the message,
    # replies' words on their generation.
    # The subqueries are left unfiltered by user so that the planner takes the text
    # index, never the user's whole history row by row; the outer query keeps to the user.
    said = matching(Message.objects.filter(role=Role.USER), "content").values("pk")
    replied = matching(Generation.objects.all(), "text").values("pk")
    messages = _in_kept(user).filter(
        Q(pk__in=said) | Q(role=Role.ASSISTANT, generation__in=replied)
    )
    return messages, matching(kept(user), "title")


def _matches_plain(user: Any, query: str) -> tuple[QuerySet[Message], QuerySet[Conversation]]:
    messages = _in_kept(user).filter(
        Q(role=Role.USER, content__icontains=query)
        | Q(role=Role.ASSISTANT, generation__text__icontains=query)
    )
    return messages, kept(user).filter(title__icontains=query)


def _snippet(text: str, query: str, width: int = 60) -> str:
    words = [w.lower() for w in query.split() if w.strip('"-')]
    lowered = text.lower()
    at = min((i for i in (lowered.find(w.strip('"-')) for w in words) if i >= 0), default=0)
    start = max(0, at - width // 2)
    piece = " ".join(text[start : start + width * 2].split())
    return ("…" if start else "") + piece + ("…" if start + width * 2 < len(text) else "")
