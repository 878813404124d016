"""Changes staff make to a gate that change what its holders may do."""

from __future__ import annotations

from typing import Any

from webapp.accounts.revocation import access_changed

from ..models import Gate, Grant
from .audit import audit_record


def gate_levels_changed(*, gate: Gate, by: Any = None) -> None:
    """The gate's levels changed: record it, and every holder's sockets decide again."""
    levels = sorted(gate.levels.values_list("level", flat=True))
    audit_record(action="gate.levels_changed", gate=gate, actor=by, detail={"levels": levels})
    for user_id in Grant.objects.filter(gate=gate, revoked_at=None).values_list(
        "user_id", flat=True
    ):
        access_changed(user_id)
