"""Ids as they arrive from URLs, frames and forms."""

from __future__ import annotations

import uuid
from typing import Any


def is_uuid(value: Any) -> bool:
    """Return whether ``value`` reads as a UUID (anything else is looked up as "not found")."""
    try:
        uuid.UUID(str(value))
    except (TypeError, ValueError):
        return False
    return True
