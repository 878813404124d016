"""The event types every backend yields, the errors it raises, and what it is given."""

from __future__ import annotations

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
class Token:
    text: str


@dataclass(frozen=True)
class Rendered:
    """The prompt text the backend received, when the chat template was applied for it."""

    text: str


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
        self, messages: list[ChatMessage], params: SamplingParams
    ) -> AsyncIterator[Event]: ...


class BackendError(Exception):
    code = "backend_error"
    default_detail = "The model server failed."

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
    default_detail = "The model server rejected the request."

    @classmethod
    def because(cls, reason: str) -> BackendRejected:
        return cls(f"{cls.default_detail[:-1]}: {reason}" if reason else None)


class BackendFailed(BackendError):
    code = "backend_failed"
    default_detail = "The model server stopped with an error while answering."
