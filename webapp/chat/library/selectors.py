"""Read the sidebar: pages of conversations grouped by date, and full-text search."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.utils import timezone

from webapp.chat.models import Conversation, Message, Role
from webapp.chat.selectors import _HTML, _INPUTS

GROUPS = ("Pinned", "Today", "Yesterday", "Previous 7 days", "Older")
SEARCH_CONFIG = "english"  # must match the vectors of migration 0006 and the title index
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
    each with its newest matching message (the one to open the conversation at)."""
    query = " ".join(str(query or "").split())[:MAX_QUERY_CHARS]
    if not query:
        return []
    if connection.vendor == "postgresql":
        messages, titles = _matches_postgres(user, query, limit)
    else:
        messages, titles = _matches_plain(user, query, limit)
    found: dict[Any, Hit] = {}
    for message in sorted(messages, key=lambda m: m.created_at, reverse=True):
        if message.conversation_id not in found:
            found[message.conversation_id] = Hit(
                message.conversation, message.pk, _snippet(message.text, query)
            )
    for conversation in titles.order_by("-updated_at")[:limit]:
        found.setdefault(conversation.pk, Hit(conversation, None, conversation.title))
    hits = sorted(found.values(), key=lambda h: h.conversation.updated_at, reverse=True)
    return hits[:limit]


def _in_kept(user: Any) -> QuerySet[Message]:
    return (
        Message.objects.filter(conversation__user=user, conversation__deleted_at__isnull=True)
        .select_related("conversation", "generation")
        .defer(*_INPUTS, *_HTML)
    )


# The newest matching message of each of the user's newest conversations that have one.
# A common word is found a few rows back from each conversation's newest message
# (index chat_message_conv_time); for a rare one PostgreSQL asks the GIN index instead.
_NEWEST_MATCH_PER_CONVERSATION = """
    SELECT hit.id FROM chat_conversation c CROSS JOIN LATERAL (
        SELECT m.id FROM chat_message m {join}
        WHERE m.conversation_id = c.id
          AND {vector} @@ websearch_to_tsquery(%s::regconfig, %s)
        ORDER BY m.created_at DESC LIMIT 1
    ) hit
    WHERE c.user_id = %s AND c.deleted_at IS NULL
    ORDER BY c.updated_at DESC LIMIT %s
"""


def _newest_matches(user: Any, query: str, limit: int, *, replies: bool) -> RawSQL:
    """Select the ids of each conversation's newest match: in replies' text (stored with
    their generations, migration 0006), or in the words stored with the messages."""
    sql = _NEWEST_MATCH_PER_CONVERSATION.format(
        join="JOIN generations_generation g ON g.id = m.generation_id" if replies else "",
        vector="g.search_vector" if replies else "m.search_vector",
    )
    return RawSQL(sql, (SEARCH_CONFIG, query, user.pk, limit))  # noqa: S611 - values are parameters


def _matches_postgres(
    user: Any, query: str, limit: int
) -> tuple[list[Message], QuerySet[Conversation]]:
    """Return the newest matching message of each of the user's ``limit`` newest conversations
    that have one (in replies, and in what was said: one of each per conversation at most),
    and the matching titles."""
    from django.contrib.postgres.search import SearchQuery, SearchVector

    messages = [
        *_in_kept(user).filter(pk__in=_newest_matches(user, query, limit, replies=True)),
        *_in_kept(user).filter(pk__in=_newest_matches(user, query, limit, replies=False)),
    ]
    wanted = SearchQuery(query, config=SEARCH_CONFIG, search_type="websearch")
    titles = kept(user).annotate(_v=SearchVector("title", config=SEARCH_CONFIG)).filter(_v=wanted)
    return messages, titles


def _matches_plain(
    user: Any, query: str, limit: int
) -> tuple[list[Message], QuerySet[Conversation]]:
    """Return what ``_matches_postgres`` returns, matched with LIKE (SQLite has no
    full-text search here)."""
    matching = Message.objects.filter(conversation=OuterRef("pk")).filter(
        Q(content__icontains=query) | Q(role=Role.ASSISTANT, generation__text__icontains=query)
    )
    newest = (
        kept(user)
        .annotate(hit=Subquery(matching.order_by("-created_at").values("pk")[:1]))
        .filter(hit__isnull=False)
        .order_by("-updated_at")
        .values("hit")[:limit]
    )
    return list(_in_kept(user).filter(pk__in=newest)), kept(user).filter(title__icontains=query)


def _snippet(text: str, query: str, width: int = 60) -> str:
    words = [w.lower() for w in query.split() if w.strip('"-')]
    lowered = text.lower()
    at = min((i for i in (lowered.find(w.strip('"-')) for w in words) if i >= 0), default=0)
    start = max(0, at - width // 2)
    piece = " ".join(text[start : start + width * 2].split())
    return ("…" if start else "") + piece + ("…" if start + width * 2 < len(text) else "")
