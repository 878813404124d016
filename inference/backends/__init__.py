"""Inference backends: each turns its protocol into the same small event types.

Exceptions (all carry a stable ``code`` and a sentence a person can read)::

    BackendError
     ├── BackendUnavailable   the server cannot be reached or is not ready (connection, 5xx),
     │                        or refuses the endpoint itself (401/403, 404)
     ├── BackendTimeout       no first token, or no next token, in time
     ├── BackendOverloaded    the server said it is too busy (HTTP 429, "overloaded")
     ├── BackendRejected      the server refused the request (HTTP 400/413/422: parameters,
     │                        prompt), with its reason
     └── BackendFailed        the generation broke off (an error event mid-stream, the
                              connection dropped, the server died, a stream it cannot read)

Both backends go through the one table at the end of ``base.py``, which
docs/protocol.md lists.
"""

from __future__ import annotations

from .base import (
    Alternative,
    Backend,
    BackendError,
    BackendFailed,
    BackendOverloaded,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    ChatMessage,
    Endpoint,
    Event,
    Finish,
    Rendered,
    Timeouts,
    Token,
)


def backend_for(endpoint: Endpoint, *, timeouts: Timeouts) -> Backend:
    """Return the client for ``endpoint``'s protocol."""
    if endpoint.kind == "tgi":
        from .tgi import TGIBackend

        return TGIBackend(endpoint, timeouts=timeouts)
    if endpoint.kind == "openai":
        from .openai import OpenAIBackend

        return OpenAIBackend(endpoint, timeouts=timeouts)
    raise ValueError(f"unknown backend kind {endpoint.kind!r}")


__all__ = [
    "Alternative",
    "Backend",
    "BackendError",
    "BackendFailed",
    "BackendOverloaded",
    "BackendRejected",
    "BackendTimeout",
    "BackendUnavailable",
    "ChatMessage",
    "Endpoint",
    "Event",
    "Finish",
    "Rendered",
    "Timeouts",
    "Token",
    "backend_for",
]
