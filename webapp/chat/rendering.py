"""Replies as HTML on the conversation page: rendered once (markdown-it-py, then nh3) and
kept on the message, so opening a conversation does not render it all again.

Kept HTML is reused only while its key matches: the renderer's version and a
digest of the text it was made from. A reply still streaming is rendered but
not kept (its text is not final).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from django.utils.safestring import mark_safe

from webapp.core.markdown import RENDERER_VERSION, render_markdown

from .models import Message, Role


def html_key(text: str) -> str:
    """Return the key of the HTML the current renderer makes from ``text``."""
    digest = hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
    return f"{RENDERER_VERSION}:{digest}"[:64]


def replies_render(*, messages: Sequence[Message]) -> None:
    """Set ``shown_html`` on every reply among ``messages``: two queries at most.

    The kept HTML is read in one query; replies with none, or with HTML made
    from another text or by another renderer, are rendered and, once finished,
    kept in one more.
    """
    replies = [m for m in messages if m.role == Role.ASSISTANT]
    if not replies:
        return
    kept = {
        pk: (key, html)
        for pk, key, html in Message.objects.filter(pk__in=[m.pk for m in replies]).values_list(
            "pk", "html_key", "html"
        )
    }
    renewed = []
    for message in replies:
        text = message.text
        key = html_key(text)
        found_key, html = kept.get(message.pk, ("", ""))
        if found_key != key:
            html = render_markdown(text)
            if not message.is_active:
                message.html, message.html_key = html, key
                renewed.append(message)
        message.shown_html = mark_safe(html)  # noqa: S308 - made by render_markdown
    if renewed:
        Message.objects.bulk_update(renewed, ["html", "html_key"])
