"""Hugging Face text-generation-inference, through the ``text-generation`` client.

The client's ``chat(stream=True)`` cannot read current TGI chat chunks, so the
prompt is rendered with the model's own chat template by TGI (``/chat_tokenize``)
and streamed with ``generate_stream``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from text_generation import AsyncClient
from text_generation import errors as tgi_errors

from inference.params import SamplingParams, params_to_tgi

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
    Rendered,
    Timeouts,
    Token,
)

_ERRORS: list[tuple[type[Exception], type[BackendError]]] = [
    (tgi_errors.OverloadedError, BackendOverloaded),
    (tgi_errors.RateLimitExceededError, BackendOverloaded),
    (tgi_errors.ValidationError, BackendRejected),
    (tgi_errors.BadRequestError, BackendRejected),
    (tgi_errors.ShardNotReadyError, BackendUnavailable),
    (tgi_errors.ShardTimeoutError, BackendUnavailable),
    (tgi_errors.NotFoundError, BackendUnavailable),
    (tgi_errors.GenerationError, BackendFailed),
    (tgi_errors.IncompleteGenerationError, BackendFailed),
    # The client's fallback for a status it does not know (a 502/503 from TGI or its proxy).
    (tgi_errors.UnknownError, BackendUnavailable),
]


class TGIBackend:
    def __init__(self, endpoint: Endpoint, *, timeouts: Timeouts) -> None:
        self.url = endpoint.url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        self.timeouts = timeouts

    async def stream(
        self, messages: list[ChatMessage], params: SamplingParams
    ) -> AsyncIterator[Event]:
        try:
            prompt, prompt_tokens = await self._render(messages)
            yield Rendered(prompt)
            client = AsyncClient(self.url, headers=self.headers, timeout=int(self.timeouts.total))
            async for response in client.generate_stream(prompt, **params_to_tgi(params)):
                if not response.token.special:
                    yield Token(response.token.text)
                if response.details is not None:
                    model_id, revision = await self._model_id()
                    yield Finish(
                        reason=str(response.details.finish_reason.value),
                        prompt_tokens=prompt_tokens,
                        generated_tokens=response.details.generated_tokens,
                        model_id=model_id,
                        revision=revision,
                    )
        except BackendError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc

    async def _render(self, messages: list[ChatMessage]) -> tuple[str, int | None]:
        """Return the prompt in the model's chat template, and its length in tokens."""
        body = await self._request(
            "POST", "/chat_tokenize", json={"model": "tgi", "messages": messages}
        )
        if body is None:  # an older TGI without /chat_tokenize
            return _chatml(messages), None
        return body["templated_text"], len(body.get("tokenize_response") or []) or None

    async def _model_id(self) -> tuple[str, str]:
        """Return the served model's id and revision (its commit sha), as TGI's /info says."""
        info = await self._request("GET", "/info")
        if not info:
            return "", ""
        return str(info.get("model_id") or ""), str(info.get("model_sha") or "")

    async def _request(self, method: str, path: str, **kwargs: object) -> dict | None:
        timeout = aiohttp.ClientTimeout(total=30, connect=self.timeouts.connect)
        async with (
            aiohttp.ClientSession(headers=self.headers, timeout=timeout) as session,
            session.request(method, self.url + path, **kwargs) as response,  # type: ignore[arg-type]
        ):
            if response.status == 404:
                return None
            if response.status != 200:
                payload = await response.json(content_type=None)
                raise tgi_errors.parse_error(response.status, payload)
            return await response.json(content_type=None)


def _chatml(messages: list[ChatMessage]) -> str:
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return turns + "<|im_start|>assistant\n"


def _translate(exc: Exception) -> BackendError:
    for source, target in _ERRORS:
        if isinstance(exc, source):
            return BackendRejected.because(str(exc)) if target is BackendRejected else target()
    if isinstance(exc, asyncio.TimeoutError):
        return BackendTimeout()
    if isinstance(exc, aiohttp.ClientError | ConnectionError | OSError):
        return BackendUnavailable()
    return BackendFailed()
