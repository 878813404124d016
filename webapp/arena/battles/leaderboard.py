"""Compute and keep the leaderboard; read the latest one as a given user may see it.

The votes read are those that count (``counted``, decided when the vote was cast), minus
those of voters staff have flagged (applied here, so a flag takes effect at the next
computation) and those involving a model that is no longer active. They are grouped by
pair and result in PostgreSQL: Python sees at most a few thousand rows whatever the number
of votes.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Count, F, QuerySet

from webapp.catalog.models import LanguageModel
from webapp.catalog.policy import models_usable

from . import ratings as bt
from .models import Battle, Leaderboard, VoterFlag, Winner

OUTCOME = {
    Winner.MODEL_A: bt.A_WINS,
    Winner.MODEL_B: bt.B_WINS,
    Winner.TIE: bt.TIE,
    Winner.BOTH_BAD: bt.TIE,
}


class Trigger:
    SCHEDULE = "schedule"
    STAFF = "staff"


def battles_rated() -> QuerySet[Battle]:
    """Return the votes the ratings read (and the open data holds)."""
    return (
        Battle.objects.filter(
            counted=True,
            voted_at__isnull=False,
            winner__in=list(OUTCOME),
            model_a__is_active=True,
            model_b__is_active=True,
        )
        .exclude(user_id__in=VoterFlag.objects.values("user_id"))
        .exclude(model_a=F("model_b"))
    )


def _grouped() -> list[tuple[Any, Any, str, int]]:
    rows = (
        battles_rated()
        .order_by()
        .values_list("model_a_id", "model_b_id", "winner")
        .annotate(n=Count("id"))
    )
    return sorted(rows, key=lambda row: (str(row[0]), str(row[1]), row[2]))


def _digest(rows: list[tuple[Any, Any, str, int]], models: list[LanguageModel], rounds: int) -> str:
    """Fingerprint what a board is made of: the grouped votes, the names shown, the rounds."""
    text = json.dumps(
        [
            [[str(a), str(b), w, n] for a, b, w, n in rows],
            [[m.slug, m.display_name] for m in models],
            rounds,
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()


def leaderboard_compute(
    *, trigger: str, rounds: int | None = None, only_if_changed: bool = False
) -> Leaderboard | None:
    """Fit the ratings on the votes as they are now and save them as a new leaderboard.

    With ``only_if_changed`` (the periodic job), nothing is saved when the votes read are
    the same as the latest leaderboard's; None is returned then.
    """
    started = time.perf_counter()
    rounds = settings.ARENA_BOOTSTRAP_ROUNDS if rounds is None else rounds
    rows = _grouped()
    ids = sorted({row[0] for row in rows} | {row[1] for row in rows}, key=str)
    models = LanguageModel.objects.in_bulk(ids)
    digest = _digest(rows, [models[i] for i in ids], rounds)
    if only_if_changed:
        latest = leaderboard_latest()
        if latest is not None and latest.matrices.get("digest") == digest:
            return None
    result = bt.ratings_compute(_outcomes(rows, ids), rounds=rounds)
    order = sorted(range(len(ids)), key=lambda i: -result.rating[i])
    return Leaderboard.objects.create(
        votes=sum(row[3] for row in rows),
        bootstrap_rounds=rounds,
        trigger=trigger,
        ratings=[_rating_row(result, i, models[ids[i]]) for i in order],
        matrices={
            "models": [models[ids[i]].slug for i in order],
            "wins": _matrix(result.win_fraction, order, digits=4),
            "battles": _matrix(result.battles, order, digits=None),
            "digest": digest,
        },
        seconds=round(time.perf_counter() - started, 4),
    )


def _outcomes(rows: list[tuple[Any, Any, str, int]], ids: list[Any]) -> bt.Outcomes:
    index = {model_id: i for i, model_id in enumerate(ids)}
    return bt.outcomes_count(
        size=len(ids),
        a=np.array([index[row[0]] for row in rows], dtype=np.intp),
        b=np.array([index[row[1]] for row in rows], dtype=np.intp),
        outcome=np.array([OUTCOME[row[2]] for row in rows], dtype=np.intp),
        count=np.array([row[3] for row in rows], dtype=np.int64),
    )


def _rating_row(result: bt.Ratings, i: int, model: LanguageModel) -> dict[str, Any]:
    return {
        "model": model.slug,
        "name": model.display_name,
        "rating": round(float(result.rating[i]), 2),
        "lower": round(float(result.lower[i]), 2),
        "upper": round(float(result.upper[i]), 2),
        "rank": int(result.rank[i]),
        "votes": int(result.votes[i]),
        "win_rate": round(float(result.win_rate[i]), 4),
    }


def _matrix(values: np.ndarray, order: list[int], *, digits: int | None) -> list[list[Any]]:
    def cell(value: float) -> Any:
        if digits is None:
            return int(value)
        return None if math.isnan(value) else round(float(value), digits)

    return [[cell(values[i, j]) for j in order] for i in order]


def leaderboard_latest() -> Leaderboard | None:
    return Leaderboard.objects.order_by("-created_at").first()


@dataclass(frozen=True)
class Board:
    """A leaderboard as one viewer sees it: only the models they may view."""

    leaderboard: Leaderboard
    rows: list[dict[str, Any]]
    models: list[dict[str, Any]]  # the rows' models, in the matrices' order
    wins: list[list[float | None]]
    battles: list[list[int]]


def leaderboard_for(*, user: Any, leaderboard: Leaderboard) -> Board:
    """Keep the models of ``leaderboard`` that ``user`` may view (ranks stay as computed)."""
    slugs = [row["model"] for row in leaderboard.ratings]
    visible = models_usable(
        user=user, models=LanguageModel.objects.filter(slug__in=slugs), action="view"
    )
    shown = {model.slug: model for model in visible}
    rows = [
        dict(row, url=shown[row["model"]].get_absolute_url())
        for row in leaderboard.ratings
        if row["model"] in shown
    ]
    matrices = leaderboard.matrices
    order = [i for i, slug in enumerate(matrices.get("models", [])) if slug in shown]
    by_slug = {row["model"]: row for row in rows}
    return Board(
        leaderboard=leaderboard,
        rows=rows,
        models=[by_slug[matrices["models"][i]] for i in order],
        wins=[[matrices["wins"][i][j] for j in order] for i in order],
        battles=[[matrices["battles"][i][j] for j in order] for i in order],
    )
