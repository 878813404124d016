"""The event types every backend yields, the errors it raises, and what it is given.

The last part of this module is the one table from a fault to an error: every
backend reports an HTTP error status, an error event inside a stream and a
connection that failed or broke off through it, so the same fault gives the same
code on every protocol. docs/protocol.md lists the same table.
"""

from __future__ import annotations

import errno
import json
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict

from inference.params import BackendKind, SamplingParams


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Endpoint:
    kind: BackendKind
    url: str
    api_key: str = ""
    model: str = ""  # the model name an OpenAI-compatible server expects; "" lets it choose
    id: str = ""  # the caller's name for this endpoint, saved with what it served


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    total: float = 1800.0


@dataclass(frozen=True, slots=True)
class Alternative:
    """A token the model might have chosen instead, with its log probability."""

    text: str
    logprob: float


@dataclass(frozen=True, slots=True)
class Token:
    """The next piece of text; with token details asked for (``SamplingParams.alternatives``),
    also its log probability and the most likely alternatives (best first)."""

    text: str
    logprob: float | None = None
    top: tuple[Alternative, ...] = ()


@dataclass(frozen=True)
class Rendered:
    """The prompt text the backend received, when the chat template was applied for it;
    ``left_out``: the oldest non-system messages the backend's token count cut besides
    (see ``inference.context``)."""

    text: str
    left_out: int = 0


@dataclass(frozen=True)
class Finish:
    reason: str
    prompt_tokens: int | None = None
    generated_tokens: int | None = None
    model_id: str = ""
    revision: str = ""  # TGI's model_sha
    system_fingerprint: str = ""  # an OpenAI-compatible server's backend configuration


Event = Token | Rendered | Finish


class Backend(Protocol):
    def stream(
        self, messages: list[ChatMessage], params: SamplingParams, *, budget: int | None = None
    ) -> AsyncIterator[Event]:
        """Stream the reply to chat ``messages`` (the model's chat template applied).

        ``budget``: the prompt tokens the context leaves room for. A backend that can
        count tokens leaves out the oldest turns that do not fit, and says how many in
        its ``Rendered`` event; one that cannot sends the messages as they are.
        """
        ...

    def complete(self, prompt: str, params: SamplingParams) -> AsyncIterator[Event]:
        """Stream the continuation of a raw ``prompt``: no chat template."""
        ...

    async def render(self, messages: list[ChatMessage]) -> str | None:
        """Return the prompt the model's chat template makes of ``messages``, or None
        where the server cannot say."""
        ...


class BackendError(Exception):
    code = "backend_error"
    default_detail = "The model server failed. Regenerate the reply to try again."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)


class BackendUnavailable(BackendError):
    code = "backend_unavailable"
    default_detail = "The model server is not reachable right now. Try again in a moment."


class BackendTimeout(BackendError):
    code = "backend_timeout"
    default_detail = "The model server took too long to answer. Try again in a moment."


class BackendOverloaded(BackendError):
    code = "backend_overloaded"
    default_detail = "The model is busy with other requests. Try again in a moment."


class BackendRejected(BackendError):
    code = "backend_rejected"
    default_detail = (
        "The model server rejected the request. "
        "Change the message or the parameters, then send it again."
    )


class BackendFailed(BackendError):
    code = "backend_failed"
    default_detail = (
        "The model server stopped with an error while answering. "
        "The text so far is kept: regenerate the reply to try again."
    )


# -- From a fault to an error: the one table every backend goes through ----------

REASON_LIMIT = 300  # characters of the server's own words kept in a detail
_BAD_REQUEST = frozenset({400, 413, 422})
_CREDENTIALS = frozenset({401, 403})
# TGI's ``error_type`` and OpenAI's ``error.type``, for the faults that are not "failed".
_OVERLOADED_KINDS = frozenset({"overloaded", "rate_limit_error"})
_REJECTED_KINDS = frozenset({"validation", "invalid_request_error"})
_AGAIN = "Try again in a moment."
_REGENERATE = "Regenerate the reply to try again."
_KEPT = "The text so far is kept: regenerate the reply to try again."


def status_error(status: int, body: object) -> BackendError:
    """Return the error for an HTTP error answer; ``body`` is its JSON or its text."""
    reason = server_reason(body)
    said = f" (HTTP {status}: {reason})" if reason else f" (HTTP {status})"
    if status == 429 or _kind(body) in _OVERLOADED_KINDS:
        return BackendOverloaded(f"The model is busy with other requests{said}. {_AGAIN}")
    if status in _BAD_REQUEST:
        return _rejected(said)
    if status in _CREDENTIALS:
        return BackendUnavailable(
            f"The model server refused Gatehouse's credentials{said}. "
            "An administrator must check the model's API key."
        )
    if status == 424:  # TGI: the model failed to generate
        return BackendFailed(f"The model server failed to generate{said}. {_REGENERATE}")
    if status < 500:
        return BackendUnavailable(
            f"The model server does not serve this model or address{said}. "
            "An administrator must check the model's endpoint."
        )
    return BackendUnavailable(f"The model server answered with an error{said}. {_AGAIN}")


def event_error(body: object) -> BackendError:
    """Return the error for an error event inside a stream the server had begun.

    TGI answers a full queue and a request it refuses with an event, not a status.
    """
    reason = server_reason(body)
    said = f" ({reason})" if reason else ""
    kind = _kind(body)
    if kind in _OVERLOADED_KINDS:
        return BackendOverloaded(f"The model is busy with other requests{said}. {_AGAIN}")
    if kind in _REJECTED_KINDS:
        return _rejected(said)
    return BackendFailed(f"The model server stopped with an error while answering{said}. {_KEPT}")


def connection_error(exc: BaseException, *, answering: bool) -> BackendError:
    """Return the error for a connection that could not be made, or that broke off
    after the server had begun to answer (it closed the socket, or it died)."""
    reason = connection_reason(exc)
    said = f" ({reason})" if reason else ""
    if answering:
        return BackendFailed(
            f"The connection to the model server broke off while answering{said}. {_KEPT}"
        )
    return BackendUnavailable(f"The model server is not reachable right now{said}. {_AGAIN}")


def malformed_error() -> BackendFailed:
    return BackendFailed(f"The model server sent a stream Gatehouse cannot read. {_KEPT}")


def unfinished_error() -> BackendFailed:
    return BackendFailed(f"The model server ended the stream before finishing. {_KEPT}")


def rejected_error(reason: str) -> BackendRejected:
    """Return the error for a request refused before it was sent, for ``reason``."""
    return _rejected(f" ({reason})" if reason else "")


def _rejected(said: str) -> BackendRejected:
    return BackendRejected(
        f"The model server rejected the request{said}. "
        "Change the message or the parameters, then send it again."
    )


def parse_body(raw: bytes | str) -> object:
    """Return an error answer's body as JSON, or as text when it is not JSON."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        return json.loads(text)
    except ValueError:
        return text


def server_reason(body: object) -> str:
    """Return the server's own words in an error body, on one line and shortened."""
    text = " ".join(_reason_text(body).split())
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1].rstrip() + "…"


def _reason_text(body: object) -> str:
    if isinstance(body, str):
        return _html_title(body) if body.lstrip().startswith("<") else body
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):  # OpenAI: {"error": {"message": ...}}
        return _reason_text(error)
    if isinstance(error, str):  # TGI: {"error": ..., "error_type": ...}
        return error
    message = body.get("message") or body.get("detail")  # vLLM's older body, FastAPI's
    if isinstance(message, str):
        return message
    if isinstance(message, list):  # FastAPI's validation errors
        return "; ".join(_field_error(item) for item in message if isinstance(item, dict))
    return ""


def _field_error(item: dict) -> str:
    where = ".".join(str(part) for part in item.get("loc") or () if part != "body")
    return f"{where}: {item.get('msg', '')}" if where else str(item.get("msg", ""))


def _html_title(page: str) -> str:
    """Return a proxy's error page by its title: the rest of the page is markup."""
    found = re.search(r"<title>(.*?)</title>", page, re.I | re.S)
    return found.group(1) if found else ""


def _kind(body: object) -> str:
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    kind = body.get("error_type") or (error.get("type") if isinstance(error, dict) else None)
    return kind.lower() if isinstance(kind, str) else ""


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}


def connection_reason(exc: BaseException) -> str:
    """Return what the operating system said about a failed connection, if anything."""
    seen: BaseException | None = exc
    for _ in range(8):  # the HTTP libraries wrap the socket's error a few times
        if seen is None:
            break
        if isinstance(seen, socket.gaierror):
            return "unknown host"
        if isinstance(seen, TimeoutError):
            return "no answer in time"
        if isinstance(seen, OSError) and seen.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[seen.errno]
        seen = seen.__cause__ or seen.__context__
    return ""
