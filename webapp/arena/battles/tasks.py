"""The periodic recomputation of the leaderboard."""

from __future__ import annotations

from celery import shared_task

from .leaderboard import Trigger, leaderboard_compute


@shared_task(
    name="arena.leaderboard_compute",
    ignore_result=True,
    soft_time_limit=120,
    time_limit=180,
)
def compute_leaderboard() -> int | None:
    """Save a new leaderboard if the votes changed since the last one; return its vote count."""
    board = leaderboard_compute(trigger=Trigger.SCHEDULE, only_if_changed=True)
    return None if board is None else board.votes
