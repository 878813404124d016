"""Read a frame from the page: JSON text, an object with a string ``type``, and fields
of the kind each handler expects; anything else is a ``FrameError``."""

from __future__ import annotations

import json
import uuid
from typing import Any

from webapp.core.errors import ApplicationError
from webapp.core.ids import is_uuid

MAX_FRAME_BYTES = 256 * 1024
MAX_LISTED = 64  # generations one subscribe may name
MAX_SEQ = 2**31


class FrameError(ApplicationError):
    code = "bad_frame"


def _parse(text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
    if text_data is None:
        raise FrameError("Frames must be JSON text.")
    if len(text_data) > MAX_FRAME_BYTES:
        raise FrameError("The frame is too large.", code="too_large")
    try:
        frame = json.loads(text_data)
    except ValueError as exc:
        raise FrameError("The frame is not valid JSON.", code="bad_json") from exc
    except RecursionError as exc:  # JSON nested thousands deep
        raise FrameError("The frame is nested too deeply.", code="bad_json") from exc
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise FrameError("A frame must be a JSON object with a string 'type'.")
    return frame


_MISSING = object()


def _field(frame: dict[str, Any], name: str, kind: type, default: Any = _MISSING) -> Any:
    value = frame.get(name, _MISSING)
    if value is _MISSING or value is None:
        if default is _MISSING:
            raise FrameError(f"'{name}' is required.")
        return default
    if not isinstance(value, kind) or isinstance(value, bool):
        raise FrameError(f"'{name}' must be a {kind.__name__}.")
    return value


def _seq(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < MAX_SEQ:
        raise FrameError(f"'{name}' must be a whole number from 0 to {MAX_SEQ - 1}.")
    return value


def _positions(value: Any) -> dict[str, int]:
    """Return the ``generations`` field: generation id -> the last seq the page rendered."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_LISTED:
        raise FrameError(f"'generations' must be an object of at most {MAX_LISTED} entries.")
    positions = {}
    for key, seq in value.items():
        if not is_uuid(key):
            raise FrameError("'generations' must be keyed by generation id.")
        positions[str(uuid.UUID(key))] = _seq(seq, "generations")
    return positions


def _uuid(value: str | None, name: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise FrameError(f"'{name}' must be a UUID.") from exc
