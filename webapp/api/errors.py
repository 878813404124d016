"""OpenAI's error body and statuses, from the errors the rest of Gatehouse raises.

Every refusal of the API answers ``{"error": {"message", "type", "param", "code"}}``
with the status the ``openai`` SDK turns into its own exception classes
(401 AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError,
400 BadRequestError, 429 RateLimitError). docs/api.md lists the codes.
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from webapp.accounts.tokens.services import TokenRefused
from webapp.core.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from webapp.generations.limits import LimitReached

# When the user's running replies are at their limit nobody knows when one ends: a
# client is asked to come back after this many seconds.
RUNNING_RETRY_AFTER = 5


class ApiError(Exception):
    """A refusal in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.param, self.code, self.retry_after = param, code, retry_after
        self.refused: Any = None  # the rule's AccessRefused, when the access rule said no

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JsonResponse:
        response = JsonResponse(self.body(), status=self.status)
        if self.retry_after is not None:
            response["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="gatehouse"'
        return response


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def internal_error() -> ApiError:
    """Return the answer to an error nobody foresaw (logged where it is caught)."""
    return ApiError(
        500,
        "The server had an error while processing your request; the error is logged.",
        type="server_error",
        code="internal_error",
    )


def model_not_found(slug: str) -> ApiError:
    return ApiError(
        404,
        f"The model '{slug}' does not exist. GET /v1/models lists the models you may use.",
        param="model",
        code="model_not_found",
    )


def api_error_from(exc: ApplicationError) -> ApiError:
    """Translate an error of the services into the API's."""
    if isinstance(exc, TokenRefused):
        if exc.code == "missing_scope":
            return ApiError(403, exc.detail, type="permission_error", code="missing_scope")
        return ApiError(401, exc.detail, type="authentication_error", code="invalid_api_key")
    if isinstance(exc, LimitReached):
        retry_after = exc.retry_after if exc.retry_after is not None else RUNNING_RETRY_AFTER
        return ApiError(
            429, exc.detail, type="rate_limit_error", code=exc.code, retry_after=retry_after
        )
    if isinstance(exc, PermissionDenied):
        return ApiError(403, exc.detail, type="permission_error", code="model_access_denied")
    if isinstance(exc, NotFound):
        return ApiError(404, exc.detail, code="not_found")
    if isinstance(exc, ValidationFailed):
        return bad_request(exc.detail, code=exc.code)
    return ApiError(500, exc.detail, type="server_error", code=exc.code)


# How a generation that ended badly answers a client that did not stream: a backend
# that is too busy is the client's cue to come back; any other fault is the server's.
GENERATION_FAILURES: dict[str, tuple[int, str]] = {
    "backend_overloaded": (429, "rate_limit_error"),
    "queue_timeout": (429, "rate_limit_error"),
    "rate_limited": (429, "rate_limit_error"),
    "forbidden": (403, "permission_error"),
    "backend_rejected": (400, "invalid_request_error"),
    "no_endpoint": (503, "server_error"),
    "backend_unavailable": (503, "server_error"),
    "backend_timeout": (504, "server_error"),
}
FAILED_RETRY_AFTER = 10


def generation_failure(error: dict[str, str] | None) -> ApiError:
    """Return the error of a generation that failed or was interrupted."""
    error = error or {}
    code = error.get("code") or "generation_failed"
    detail = error.get("detail") or "The generation failed."
    status, kind = GENERATION_FAILURES.get(code, (502, "server_error"))
    retry_after = FAILED_RETRY_AFTER if status in (429, 503) else None
    return ApiError(status, detail, type=kind, code=code, retry_after=retry_after)
