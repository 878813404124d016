"""Markdown to safe HTML on the server (model cards, saved replies): markdown-it-py, then nh3."""

from __future__ import annotations

from importlib.metadata import version

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": True}).enable(
    ["table", "strikethrough", "linkify"]
)

# Saved HTML (chat replies) made by another renderer is rendered again: raise the first
# part whenever the options or the allowed tags below change.
RENDERER_VERSION = f"1/{version('markdown-it-py')}/{version('nh3')}"

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table", "tbody",
    "td", "th", "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
}


def render_markdown(text: str, *, images: bool = False) -> str:
    """Return ``text`` as HTML that can hold no script, style or event handler.

    Images are off unless asked for: a model could be prompted into an image
    URL that carries the conversation to another site on every page view.
    """
    return nh3.clean(
        _md.render(text or ""),
        tags=_TAGS if images else _TAGS - {"img"},
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
