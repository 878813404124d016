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

from django.db.models import Count, F, FloatField, Func, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils.crypto import salted_hmac

from webapp.catalog.models import LanguageModel

from .leaderboard import battles_rated
from .models import BattleTurn

JUDGE_SALT = "gatehouse.arena.judge"


def judge_pseudonym(*, user_id: Any) -> str:
    return "judge_" + salted_hmac(JUDGE_SALT, str(user_id), algorithm="sha256").hexdigest()[:20]


def battle_lines() -> Iterator[str]:
    """Yield one JSON line per vote the ratings read, oldest first."""
    turns = (
        BattleTurn.objects.filter(battle=OuterRef("pk"))
        .order_by()
        .values("battle")
        .annotate(count=Count("id"))
        .values("count")
    )
    # Seconds as a float from PostgreSQL: parsing 100,000 timestamps is most of the export.
    epoch = Func(
        F("voted_at"),
        template="EXTRACT(EPOCH FROM %(expressions)s)::float8",
        output_field=FloatField(),
    )
    rows = (
        battles_rated()
        .annotate(turn=Coalesce(Subquery(turns, output_field=IntegerField()), 0), tstamp=epoch)
        .order_by("voted_at", "id")
        .values_list("id", "model_a_id", "model_b_id", "winner", "user_id", "turn", "tstamp")
    )
    slugs = dict(LanguageModel.objects.values_list("id", "slug"))
    pseudonyms: dict[Any, str] = {}
    for battle_id, model_a, model_b, winner, user_id, turn, tstamp in rows.iterator(5000):
        if user_id not in pseudonyms:
            pseudonyms[user_id] = judge_pseudonym(user_id=user_id)
        line = {
            "question_id": battle_id.hex,
            "model_a": slugs[model_a],
            "model_b": slugs[model_b],
            "winner": winner,
            "judge": pseudonyms[user_id],
            "turn": turn,
            "anony": True,
            "tstamp": round(tstamp, 3),
        }
        yield json.dumps(line) + "\n"
