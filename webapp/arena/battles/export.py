"""The open data: counted votes as JSON lines, in the battle format FastChat's
``elo_analysis.py`` reads, so anyone can fit the ratings again outside Gatehouse.

Each voter is a stable pseudonym (an HMAC of their id under the site's secret key):
the same person has the same ``judge`` in every export, and the export says nothing
about who they are. Prompts and replies are not exported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.db.models import Count
from django.utils.crypto import salted_hmac

from .leaderboard import battles_rated

JUDGE_SALT = "gatehouse.arena.judge"


def judge_pseudonym(*, user_id: Any) -> str:
    return "judge_" + salted_hmac(JUDGE_SALT, str(user_id), algorithm="sha256").hexdigest()[:20]


def battle_lines() -> Iterator[str]:
    """Yield one JSON line per vote the ratings read, oldest first."""
    rows = (
        battles_rated()
        .annotate(turn=Count("turns"))
        .order_by("voted_at", "id")
        .values_list(
            "id", "model_a__slug", "model_b__slug", "winner", "user_id", "turn", "voted_at"
        )
    )
    pseudonyms: dict[Any, str] = {}
    for battle_id, model_a, model_b, winner, user_id, turn, voted_at in rows.iterator(2000):
        if user_id not in pseudonyms:
            pseudonyms[user_id] = judge_pseudonym(user_id=user_id)
        line = {
            "question_id": battle_id.hex,
            "model_a": model_a,
            "model_b": model_b,
            "winner": winner,
            "judge": pseudonyms[user_id],
            "turn": turn,
            "anony": True,
            "tstamp": round(voted_at.timestamp(), 3),
        }
        yield json.dumps(line) + "\n"
