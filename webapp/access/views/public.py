"""The gate list and a gate's page: models, licence, levels, what access requires."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from webapp.catalog.policy import access_refusal

from ..selectors.gates import gate_can_review, gate_list, standing_get
from .common import gate_or_404


def gates(request: HttpRequest) -> HttpResponse:
    return render(request, "access/gate_list.html", {"gates": gate_list()})


def gate_detail(request: HttpRequest, slug: str) -> HttpResponse:
    gate = gate_or_404(slug)
    standing = standing_get(user=request.user, gate=gate)
    context = {
        "gate": gate,
        "standing": standing,
        "licence": standing.licence,
        "chat_refusal": access_refusal(user=request.user, model_or_gate=gate, action="chat"),
        "can_review": gate_can_review(user=request.user, gate=gate),
    }
    return render(request, "access/gate.html", context)
