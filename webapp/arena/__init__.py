"""Models side by side: named compare sessions (``compare/``) and blind battles with votes and
the leaderboard (``battles/``). Every column and every side is a generation."""
