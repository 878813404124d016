"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp, TGI's Messages API) via the SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
        client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=0
        )
        try:
            stream = await client.chat.completions.create(  # type: ignore[call-overload]
                model=self.model or await _served_model(client),
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                **params_to_openai(params),
            )
            async with stream:
                async for event in _events(stream):
                    yield event
        except BackendError:
            raise
        except Exception as exc:
            raise _translate(exc) from exc
        finally:
            await client.close()


_served: dict[str, str] = {}


async def _served_model(client: openai.AsyncOpenAI) -> str:
    """Return the model the server serves, for models configured without a name."""
    url = str(client.base_url)
    if url not in _served:
        models = await client.models.list()
        _served[url] = models.data[0].id if models.data else "default"
    return _served[url]


async def _events(stream: openai.AsyncStream) -> AsyncIterator[Event]:
    reason, model_id = "", ""
    for_usage: Finish | None = None
    async for chunk in stream:
        model_id = chunk.model or model_id
        if chunk.choices:
            choice = chunk.choices[0]
            if choice.delta and choice.delta.content:
                yield Token(choice.delta.content)
            reason = choice.finish_reason or reason
        if chunk.usage is not None:
            for_usage = Finish(
                reason=reason,
                prompt_tokens=chunk.usage.prompt_tokens,
                generated_tokens=chunk.usage.completion_tokens,
                model_id=model_id,
            )
    if not reason and for_usage is None:
        raise BackendFailed("The model server closed the stream before finishing.")
    yield for_usage or Finish(reason=reason, model_id=model_id)


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
    return BackendFailed()


def _server_message(exc: openai.APIStatusError) -> BackendRejected:
    body = exc.body
    message = ""
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message") or ""
    return BackendRejected.because(str(message))
