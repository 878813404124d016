"""The app's admin lives with its halves."""

from __future__ import annotations

from webapp.arena.battles import admin as battles_admin  # noqa: F401
