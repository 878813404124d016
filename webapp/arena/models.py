"""The app's models live with their half: compare sessions and battles."""

from __future__ import annotations
