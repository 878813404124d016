"""Generations brought in from an export: finished replies with the stats they were saved
with. They are records only: nothing is queued, counted against limits or streamed."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from webapp.catalog.models import LanguageModel
from webapp.core.errors import ValidationFailed

from .models import Generation, Origin, Status

_FINAL = {Status.DONE, Status.STOPPED, Status.FAILED, Status.INTERRUPTED}
_COUNTS = ("prompt_tokens", "generated_tokens")
_RATES = ("time_to_first_token_ms", "tokens_per_second")
_TEXTS = {"finish_reason": 32, "backend_model_id": 300, "backend_revision": 100}
MAX_PARAMS_CHARS = 4000
MAX_COUNT = 2**31 - 1


@dataclass
class ImportedReply:
    model: LanguageModel
    text: str
    created_at: dt.datetime
    stats: dict[str, Any] = field(default_factory=dict)  # checked by imported_stats_read


def imported_stats_read(raw: Any, *, where: str) -> dict[str, Any]:
    """Return an export's reply record (``generation`` of a message) as Generation fields,
    or raise ValidationFailed naming the first value that cannot be one."""
    if not isinstance(raw, Mapping):
        raise ValidationFailed(f"{where}: a reply's generation is not an object.")
    stats: dict[str, Any] = {"status": raw.get("status") or Status.DONE}
    if stats["status"] not in _FINAL:
        raise ValidationFailed(
            f"{where}: a reply's status {str(stats['status'])[:20]!r} is not final."
        )
    for name in _COUNTS:
        stats[name] = _number(raw.get(name), where, name, whole=True)
    for name in _RATES:
        stats[name] = _number(raw.get(name), where, name, whole=False)
    for name, length in _TEXTS.items():
        value = raw.get(name) or ""
        if not isinstance(value, str) or len(value) > length:
            raise ValidationFailed(f"{where}: a reply's {name} is not text of {length} or fewer.")
        stats[name] = value
    params = raw.get("params") or {}
    if not isinstance(params, dict) or len(json.dumps(params)) > MAX_PARAMS_CHARS:
        raise ValidationFailed(f"{where}: a reply's params are not a small object.")
    stats["params"] = params
    return stats


def _number(value: Any, where: str, name: str, *, whole: bool) -> float | int | None:
    if value is None:
        return None
    kinds = int if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not 0 <= value <= MAX_COUNT:
        raise ValidationFailed(f"{where}: a reply's {name} is not a number of 0 or more.")
    return value


def generations_import(*, user: Any, group: str, replies: list[ImportedReply]) -> list[Generation]:
    """Save ``replies`` as finished chat generations of ``user``, dated as in the export."""
    made = [
        Generation(
            user=user,
            language_model=reply.model,
            origin=Origin.CHAT,
            channel_group=group,
            text=reply.text,
            finished_at=reply.created_at,
            **reply.stats,
        )
        for reply in replies
    ]
    Generation.objects.bulk_create(made, batch_size=1000)
    for generation, reply in zip(made, replies, strict=True):
        generation.created_at = reply.created_at  # auto_now_add stamped them all with now
    Generation.objects.bulk_update(made, ["created_at"], batch_size=1000)
    return made
