"""The app's models live with their half: compare sessions and battles."""

from __future__ import annotations

from webapp.arena.battles.models import (  # noqa: F401
    ArenaEntry,
    Battle,
    BattleTurn,
    Leaderboard,
    VoterFlag,
    Winner,
)
from webapp.arena.compare.models import (  # noqa: F401
    CompareColumn,
    CompareReply,
    CompareSession,
    CompareTurn,
)
