"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp, TGI's Messages API).

The request is sent as the OpenAI SDK would send it (``Authorization: Bearer``
with the endpoint's key, a JSON body), through the backends' shared HTTP session
(``inference.backends.http``): the SDK's client cost a millisecond more before
the first token, and building its models for every token twenty times more CPU
than parsing the stream's lines with ``json``, which is done here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from inference.params import SamplingParams, params_to_openai

from . import http
from .base import (
    Alternative,
    BackendError,
    BackendFailed,
    ChatMessage,
    Endpoint,
    Event,
    Finish,
    Timeouts,
    Token,
    event_error,
    malformed_error,
    unfinished_error,
)

# The model each server serves, for endpoints configured without a model name.
_served: dict[str, str] = {}


class OpenAIBackend:
    def __init__(self, endpoint: Endpoint, *, timeouts: Timeouts) -> None:
        url = endpoint.url.rstrip("/")
        self.base_url = url if url.endswith("/v1") else f"{url}/v1"
        # As the SDK does: a server without keys takes any.
        self.headers = {"Authorization": f"Bearer {endpoint.api_key or 'not-needed'}"}
        self.model = endpoint.model
        self.timeout = http.timeout(timeouts.total, timeouts.connect)

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
        completion = path == "/completions"
        body = {
            "model": self.model or await self._served_model(),
            **given,
            "stream": True,
            "stream_options": {"include_usage": True},
            **params_to_openai(params, completion=completion),
        }
        pieces = _completion_tokens if completion else _chat_tokens
        async with http.opened(
            "POST", self.base_url + path, json=body, headers=self.headers, timeout=self.timeout
        ) as response:
            try:
                async for event in _events(_text(http.lines(response)), pieces):
                    yield event
            except BackendError:
                raise
            except Exception as exc:
                raise _reading_error(exc) from exc

    async def _served_model(self) -> str:
        """Return the model the server serves, for models configured without a name."""
        if self.base_url not in _served:
            async with http.opened(
                "GET", self.base_url + "/models", headers=self.headers, timeout=self.timeout
            ) as response:
                models = await http.json_body(response)
            data = models.get("data") if isinstance(models, dict) else None
            _served[self.base_url] = str(data[0].get("id") or "default") if data else "default"
        return _served[self.base_url]


async def _text(lines: AsyncIterator[bytes]) -> AsyncIterator[str]:
    async for line in lines:
        yield line.decode()


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


def _reading_error(exc: Exception) -> BackendError:
    """Return the error for a stream the server began to answer and Gatehouse cannot read
    (the HTTP session raises the errors of a connection that broke off itself)."""
    if isinstance(exc, ValueError | KeyError | TypeError | AttributeError):
        return malformed_error()
    return BackendFailed()
