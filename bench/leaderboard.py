"""Recompute the leaderboard from 100,000 votes over 30 models with 100 bootstrap rounds,
timed next to a plain single fit of the same votes in the same run.

    python bench/leaderboard.py [--database-url URL] [--votes 100000] [--models 30]
                                [--rounds 100] [--runs 5]

Two parts. The fit alone (numpy, no database): counting the votes into pair matrices,
one fit, and one fit plus the bootstrap rounds. Then the whole recomputation as the
periodic job and staff's button run it: the votes are made with bulk_create in
PostgreSQL (default: $DATABASE_URL, else the database ``gatehouse_bench``, migrated
first), ``leaderboard_compute`` reads them grouped by pair, fits and saves; with
``--rounds`` rounds and with none. The leaderboard page is opened and the votes exported
too. Times are medians
of ``--runs`` runs after one warm-up; the data is deleted at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.stack import database_url_argument, django_in_process  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    database_url_argument(parser)
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument("--models", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    return parser.parse_args(argv)


def _synthetic(votes: int, models: int, seed: int = 7) -> tuple[np.ndarray, ...]:
    """Votes between models of spread-out strengths: sides, outcome (0 A, 1 B, 2 tie)."""
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 1.0, models)
    a = rng.integers(0, models, votes)
    b = (a + rng.integers(1, models, votes)) % models
    p = 1 / (1 + np.exp(strength[b] - strength[a]))
    u = rng.random(votes)
    outcome = np.where(u < 0.15, 2, np.where(u < 0.15 + 0.85 * p, 0, 1))
    return a, b, outcome


def _timed(call: Callable[[], object], runs: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _print(rows: list[tuple[str, float]]) -> None:
    base = rows[0][1]
    print(f"\n{'step':54} {'median ms':>10} {'x first':>8}")
    for name, ms in rows:
        print(f"{name:54} {ms:10.1f} {ms / base:8.1f}")


def bench_fit(args: argparse.Namespace) -> None:
    from webapp.arena.battles import ratings as bt

    a, b, outcome = _synthetic(args.votes, args.models)

    def count() -> bt.Outcomes:
        return bt.outcomes_count(size=args.models, a=a, b=b, outcome=outcome)

    counted = count()
    rng = np.random.default_rng(1)

    def resampling_battles() -> None:
        """The bootstrap done battle by battle, for comparison: draw indices, recount, fit."""
        for _ in range(args.rounds):
            pick = rng.integers(0, args.votes, args.votes)
            again = bt.outcomes_count(size=args.models, a=a[pick], b=b[pick], outcome=outcome[pick])
            bt.ratings_fit(again.scores)

    print(f"the fit alone: {args.votes:,} votes, {args.models} models (numpy)")
    _print(
        [
            ("one fit (ratings only)", _timed(lambda: bt.ratings_fit(counted.scores), args.runs)),
            ("count the votes into pair matrices", _timed(count, args.runs)),
            (
                f"one fit + {args.rounds} bootstrap rounds (the tables too)",
                _timed(lambda: bt.ratings_compute(counted, rounds=args.rounds), args.runs),
            ),
            (
                f"for comparison: {args.rounds} rounds resampling single battles",
                _timed(resampling_battles, 1),
            ),
        ]
    )


def _make_votes(args: argparse.Namespace, tag: str) -> tuple[list, list]:  # type: ignore[type-arg]
    from django.utils import timezone

    from tests.factories import LanguageModelFactory, UserFactory
    from webapp.arena.models import Battle

    models = [
        LanguageModelFactory(slug=f"{tag}-m{i}", display_name=f"Bench model {i:02d}")
        for i in range(args.models)
    ]
    users = [UserFactory(email=f"{tag}-{i}@example.org") for i in range(50)]
    a, b, outcome = _synthetic(args.votes, args.models)
    winners = np.array(["model_a", "model_b", "tie"], dtype=object)[outcome]
    winners[(outcome == 2) & (np.arange(args.votes) % 3 == 0)] = "tie (bothbad)"
    now = timezone.now()
    Battle.objects.bulk_create(
        (
            Battle(
                user=users[k % len(users)],
                model_a=models[a[k]],
                model_b=models[b[k]],
                winner=str(winners[k]),
                voted_at=now,
                counted=True,
            )
            for k in range(args.votes)
        ),
        batch_size=5000,
    )
    return models, users


def bench_recompute(args: argparse.Namespace) -> None:
    from django.db import connection
    from django.test import Client

    from webapp.accounts.models import User
    from webapp.arena.battles.export import battle_lines
    from webapp.arena.battles.leaderboard import Trigger, leaderboard_compute
    from webapp.arena.models import Battle, Leaderboard
    from webapp.catalog.models import LanguageModel

    tag = f"bench-{uuid.uuid4().hex[:8]}"
    before = set(Leaderboard.objects.values_list("id", flat=True))
    print(f"\ncreating {args.votes:,} votes in PostgreSQL…", flush=True)
    started = time.perf_counter()
    models, users = _make_votes(args, tag)
    print(f"made in {time.perf_counter() - started:.1f} s", flush=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE arena_battle")
        client = Client()
        client.force_login(users[0])

        def page() -> None:
            assert client.get("/leaderboard/").status_code == 200

        def export() -> None:
            assert sum(1 for _ in battle_lines()) == args.votes

        print(f"the whole recomputation (read, fit, save): {args.votes:,} votes")
        _print(
            [
                (
                    "leaderboard_compute, a single fit (0 rounds)",
                    _timed(lambda: leaderboard_compute(trigger=Trigger.STAFF, rounds=0), args.runs),
                ),
                (
                    f"leaderboard_compute, {args.rounds} bootstrap rounds",
                    _timed(
                        lambda: leaderboard_compute(trigger=Trigger.STAFF, rounds=args.rounds),
                        args.runs,
                    ),
                ),
                (f"open /leaderboard/ ({args.models} models)", _timed(page, args.runs)),
                (f"export the {args.votes:,} votes (JSON lines)", _timed(export, 1)),
            ]
        )
    finally:
        Leaderboard.objects.exclude(id__in=before).delete()
        Battle.objects.filter(user__in=users).delete()
        User.objects.filter(pk__in=[u.pk for u in users]).delete()
        LanguageModel.objects.filter(pk__in=[m.pk for m in models]).delete()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    django_in_process(args.database_url)
    bench_fit(args)
    bench_recompute(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
