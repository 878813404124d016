"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp, TGI's Messages API) via the SDK.

The SDK sends the request (base URL, authentication, timeouts) and maps HTTP
errors to its exceptions. The body is built here and sent through the
client's ``post``, not ``chat.completions.create``: on this machine ``create``
spent 3.4 to 7 ms of the worker's shared loop preparing a 20-message request,
``post`` 0.1 ms over a bare httpx request. The stream's lines are read raw and
parsed with ``json``, since building the SDK's models for every token costs
twenty times more CPU than the parse itself.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator

import httpx
import openai

from inference.params import SamplingParams, params_to_openai

from .base import (
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
    Timeouts,
    Token,
)

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
        self, messages: list[ChatMessage], params: SamplingParams
    ) -> AsyncIterator[Event]:
        client = self._client()
        try:
            body = {
                "model": self.model or await _served_model(client),
                "messages": messages,
                "stream": True,
                "stream_options": {"include_usage": True},
                **params_to_openai(params),
            }
            response = await client.post(
                "/chat/completions", body=body, cast_to=httpx.Response, stream=True
            )
            try:
                async for event in _events(response.aiter_lines()):
                    yield event
            finally:
                await response.aclose()  # a stop closes the request: the server stops generating
        except BackendError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc

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


async def _events(lines: AsyncIterator[str]) -> AsyncIterator[Event]:
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
            raise BackendFailed()
        model_id = chunk.get("model") or model_id
        fingerprint = chunk.get("system_fingerprint") or fingerprint
        if choices := chunk.get("choices"):
            if content := (choices[0].get("delta") or {}).get("content"):
                yield Token(content)
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
        raise BackendFailed("The model server closed the stream before finishing.")
    yield for_usage or Finish(reason=reason, model_id=model_id, system_fingerprint=fingerprint)


def _translate(exc: Exception) -> BackendError:
    if isinstance(exc, openai.APITimeoutError):
        return BackendTimeout()
    if isinstance(exc, openai.APIConnectionError):
        return BackendUnavailable()
    if isinstance(exc, openai.RateLimitError):
        return BackendOverloaded()
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        return _server_message(exc)
    if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        return BackendUnavailable() if exc.status_code in (502, 503, 504) else BackendFailed()
    if isinstance(exc, json.JSONDecodeError):
        return BackendFailed("The model server sent a malformed stream.")
    return BackendFailed()


def _server_message(exc: openai.APIStatusError) -> BackendRejected:
    body = exc.body
    message = ""
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message") or ""
    return BackendRejected.because(str(message))
