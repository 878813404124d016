"""Fault drills' figures: the fault tests record each run, and the session prints, per
drill, runs, replies recovered, characters lost and time to recovery (docs/reliability.md).

``make drill`` runs the fault tests alone, ``DRILL_RUNS`` times each.
"""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from dataclasses import dataclass

import pytest


def drill_runs(default: int) -> int:
    """How many times a drill runs: ``DRILL_RUNS`` if set (``make drill``), else ``default``."""
    return int(os.environ.get("DRILL_RUNS") or default)


@dataclass
class Run:
    recovered: bool
    characters_lost: int
    recovery_s: float


_runs: dict[str, list[Run]] = defaultdict(list)


def record(drill: str, *, shown: str, saved: str, ended: bool, recovery_s: float) -> None:
    """Record one run of ``drill``: the text the page showed before the fault, the text
    saved, whether the reply ended (done or interrupted), and seconds until replies
    worked again."""
    kept = next((i for i, (a, b) in enumerate(zip(shown, saved)) if a != b), None)
    lost = len(shown) - (min(len(shown), len(saved)) if kept is None else kept)
    _runs[drill].append(Run(ended and lost == 0, lost, recovery_s))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _runs:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault drills")
    write(
        f"{'drill':<40} {'runs':>4} {'recovered':>9} {'chars lost':>10} "
        f"{'recovery p50 / max (s)':>22}"
    )
    for drill, runs in _runs.items():
        times = [run.recovery_s for run in runs]
        write(
            f"{drill:<40} {len(runs):>4} {sum(r.recovered for r in runs):>9} "
            f"{sum(r.characters_lost for r in runs):>10} "
            f"{statistics.median(times):>13.2f} / {max(times):.2f}"
        )
