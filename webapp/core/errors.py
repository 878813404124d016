"""Errors that services raise and views, consumers and tasks translate for the user."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A failure with a stable machine code and a sentence a person can read."""

    code = "error"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code

    def as_dict(self) -> dict[str, Any]:
        """The fields an error frame or a JSON error body carries."""
        return {"code": self.code, "detail": self.detail}


class NotFound(ApplicationError):
    code = "not_found"


class PermissionDenied(ApplicationError):
    code = "forbidden"


class ValidationFailed(ApplicationError):
    code = "invalid"


class Conflict(ApplicationError):
    code = "conflict"
