from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from webapp.core.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    """Render model output: no images."""
    return mark_safe(render_markdown(text))  # noqa: S308 - sanitised by nh3


@register.filter(name="markdown_card")
def markdown_card_filter(text: str) -> SafeString:
    """Render a staff-written model card: images allowed."""
    return mark_safe(render_markdown(text, images=True))  # noqa: S308 - sanitised by nh3
