"""``{% weights_section gate %}``: the weights part of a gate's page, for whoever looks."""

from __future__ import annotations

from typing import Any

from django import template

from webapp.access.models import Gate, Level
from webapp.access.selectors.rule import gate_refusal

register = template.Library()


@register.inclusion_tag("weights/_section.html", takes_context=True)
def weights_section(context: Any, gate: Gate) -> dict[str, Any]:
    from webapp.weights.views.browser import files_context

    request = context["request"]
    offered = gate.levels.filter(level=Level.WEIGHTS).exists()
    refusal = gate_refusal(user=request.user, gate=gate, level=Level.WEIGHTS) if offered else None
    section: dict[str, Any] = {"gate": gate, "offered": offered, "refusal": refusal}
    if offered and refusal is None:
        section.update(files_context(request, gate=gate), holder=True)
    return section
