"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp, TGI's Messages API) via the SDK.

The SDK sends the request (base URL, authentication, timeouts) and maps HTTP
errors to its exceptions. The body is built here and sent through the
client's ``post``, not ``chat.completions.create`` (nor ``completions.create``
for a raw completion): on this machine ``create``
spent 3.4 to 7 ms of the worker's shared loop preparing a 20-message request,
``post`` 0.1 ms over a bare httpx request. The stream's lines are read raw and
parsed with ``json``, since building the SDK's models for every token costs
twenty times more CPU than the parse itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import openai

from inference.params import SamplingParams, params_to_openai

from .base import (
    Alternative,
    BackendError,
    BackendFailed,
    BackendTimeout,
    ChatMessage,
    Endpoint,
    Event,
    Finish,
    Timeouts,
    Token,
    connection_error,
    event_error,
    malformed_error,
    parse_body,
    status_error,
    unfinished_error,
)

# The SDK sends through httpx2 from openai 3 on, through httpx before: a stream that
# breaks off raises the errors of whichever it uses.
_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.TransportError,)
_TIMEOUTS: tuple[type[Exception], ...] = (httpx.TimeoutException,)
_CONNECT_TIMEOUTS: tuple[type[Exception], ...] = (httpx.ConnectTimeout,)
with contextlib.suppress(ImportError):
    import httpx2

    _TRANSPORT_ERRORS += (httpx2.TransportError,)
    _TIMEOUTS += (httpx2.TimeoutException,)
    _CONNECT_TIMEOUTS += (httpx2.ConnectTimeout,)

# One client (and connection pool) per event loop and endpoint: making one costs
# milliseconds of CPU, which would stall every other stream on the loop.
_ClientKey = tuple[str, str, float | None, float | None]
_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[_ClientKey, openai.AsyncOpenAI]
] = weakref.WeakKeyDictionary()
_served: dict[str, str] = {}


class OpenAIBackend:
    def __init__(self, endpoint: Endpoint, *, timeouts: Timeouts) -> None:
        url = endpoint.url.rstrip("/")
        self.base_url = url if url.endswith("/v1") else f"{url}/v1"
        self.api_key = endpoint.api_key or "not-needed"
        self.model = endpoint.model
        self.timeout = openai.Timeout(timeouts.total, connect=timeouts.connect)

    async def stream(
        self, messages: list[ChatMessage], params: SamplingParams, *, budget: int | None = None
    ) -> AsyncIterator[Event]:
        # The protocol has no route that counts tokens: the web app's estimate stands.
        async for event in self._post("/chat/completions", {"messages": messages}, params):
            yield event

    async def complete(self, prompt: str, params: SamplingParams) -> AsyncIterator[Event]:
        async for event in self._post("/completions", {"prompt": prompt}, params):
            yield event

    async def render(self, messages: list[ChatMessage]) -> str | None:
        return None  # the OpenAI protocol has no route that renders the chat template

    async def _post(
        self, path: str, given: dict[str, Any], params: SamplingParams
    ) -> AsyncIterator[Event]:
        client = self._client()
        completion = path == "/completions"
        try:
            body = {
                "model": self.model or await _served_model(client),
                **given,
                "stream": True,
                "stream_options": {"include_usage": True},
                **params_to_openai(params, completion=completion),
            }
            response = await client.post(path, body=body, cast_to=httpx.Response, stream=True)
        except Exception as exc:
            raise _opening_error(exc) from exc
        pieces = _completion_tokens if completion else _chat_tokens
        try:
            async for event in _events(response.aiter_lines(), pieces):
                yield event
        except BackendError:
            raise
        except Exception as exc:
            raise _reading_error(exc) from exc
        finally:
            await response.aclose()  # a stop closes the request: the server stops generating

    def _client(self) -> openai.AsyncOpenAI:
        per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
        key = (self.base_url, self.api_key, self.timeout.read, self.timeout.connect)
        if key not in per_loop:
            per_loop[key] = openai.AsyncOpenAI(
                base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=0
            )
        return per_loop[key]


async def _served_model(client: openai.AsyncOpenAI) -> str:
    """Return the model the server serves, for models configured without a name."""
    url = str(client.base_url)
    if url not in _served:
        models = await client.models.list()
        _served[url] = models.data[0].id if models.data else "default"
    return _served[url]


def _chat_tokens(choice: dict[str, Any]) -> list[Token]:
    content = (choice.get("delta") or {}).get("content")
    return [Token(content)] if content else []


def _completion_tokens(choice: dict[str, Any]) -> list[Token]:
    """Return a completion chunk's text, one Token per token when it carries logprobs.

    A chunk's ``logprobs`` lists its tokens, their logprobs and, per token, the
    top alternatives as a map from text to logprob.
    """
    text = choice.get("text") or ""
    logprobs = choice.get("logprobs") or {}
    tokens = logprobs.get("tokens") or []
    if not tokens:
        return [Token(text)] if text else []
    values = logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or []
    found = [
        Token(
            str(token),
            _float(values[i] if i < len(values) else None),
            _ranked(tops[i] if i < len(tops) else None),
        )
        for i, token in enumerate(tokens)
    ]
    if "".join(t.text for t in found) != text:  # a server that splits text and tokens apart
        return [Token(text, found[0].logprob, found[0].top)] if text else []
    return [t for t in found if t.text]


def _ranked(top: object) -> tuple[Alternative, ...]:
    if not isinstance(top, dict):
        return ()
    pairs = [(str(k), v) for k, v in top.items() if isinstance(v, int | float)]
    return tuple(Alternative(k, float(v)) for k, v in sorted(pairs, key=lambda kv: -kv[1]))


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


async def _events(
    lines: AsyncIterator[str], pieces: Callable[[dict[str, Any]], list[Token]]
) -> AsyncIterator[Event]:
    reason, model_id, fingerprint = "", "", ""
    for_usage: Finish | None = None
    async for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if chunk.get("error"):
            raise event_error(chunk)
        model_id = chunk.get("model") or model_id
        fingerprint = chunk.get("system_fingerprint") or fingerprint
        if choices := chunk.get("choices"):
            for token in pieces(choices[0]):
                yield token
            reason = choices[0].get("finish_reason") or reason
        if usage := chunk.get("usage"):
            for_usage = Finish(
                reason=reason,
                prompt_tokens=usage.get("prompt_tokens"),
                generated_tokens=usage.get("completion_tokens"),
                model_id=model_id,
                system_fingerprint=fingerprint,
            )
    if not reason and for_usage is None:
        raise unfinished_error()
    yield for_usage or Finish(reason=reason, model_id=model_id, system_fingerprint=fingerprint)


def _opening_error(exc: Exception) -> BackendError:
    """Return the error for a request the server did not begin to answer."""
    if isinstance(exc, openai.APIStatusError):
        return status_error(exc.status_code, parse_body(exc.response.content))
    if isinstance(exc, openai.APITimeoutError) and not isinstance(exc.__cause__, _CONNECT_TIMEOUTS):
        return BackendTimeout()
    if isinstance(exc, openai.APIConnectionError):
        return connection_error(exc, answering=False)
    return BackendFailed()


def _reading_error(exc: Exception) -> BackendError:
    """Return the error for a stream that broke off after the server began to answer."""
    if isinstance(exc, _TIMEOUTS):
        return BackendTimeout()
    if isinstance(exc, _TRANSPORT_ERRORS):
        return connection_error(exc, answering=True)
    if isinstance(exc, ValueError | KeyError | TypeError | AttributeError):
        return malformed_error()
    return BackendFailed()
