"""Hugging Face text-generation-inference, with the ``text-generation`` client's types.

The client's ``chat(stream=True)`` cannot read current TGI chat chunks, so the
prompt is rendered with the model's own chat template by TGI (``/chat_tokenize``)
and streamed from ``/`` as the client's ``generate_stream`` does. The same answer
counts the prompt's tokens with the model's tokenizer: a history that does not
fit the context after all loses its oldest turns (``inference.context``). A raw
completion streams its prompt as it is from ``/generate_stream``. The request is
sent here, through aiohttp like the client, because the client keeps only the
body of an error and drops its status: a 500 and an error event mid-stream both
reach it as a ``GenerationError``. Its ``Request`` builds the body and its
``StreamResponse`` reads each event.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from pydantic import ValidationError
from text_generation import errors as tgi_errors
from text_generation.types import Parameters, Request, StreamResponse

from inference.context import counted_fit
from inference.params import SamplingParams, params_to_tgi

from . import http
from .base import (
    Alternative,
    BackendError,
    ChatMessage,
    Endpoint,
    Event,
    Finish,
    Rendered,
    Timeouts,
    Token,
    event_error,
    malformed_error,
    rejected_error,
    server_reason,
    unfinished_error,
)

METADATA_TIMEOUT = 30.0


class TGIBackend:
    def __init__(self, endpoint: Endpoint, *, timeouts: Timeouts) -> None:
        self.url = endpoint.url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        self.timeouts = timeouts

    async def stream(
        self, messages: list[ChatMessage], params: SamplingParams, *, budget: int | None = None
    ) -> AsyncIterator[Event]:
        async def count(kept: list[ChatMessage]) -> tuple[int | None, tuple[str, int | None]]:
            rendered = await self._render(kept)
            return rendered[1], rendered

        if budget is None:
            left_out, answer = 0, await self._render(messages)
        else:
            left_out, answer = await counted_fit(messages, budget, count)
        prompt, prompt_tokens = answer
        yield Rendered(prompt, left_out=left_out)
        async for event in self._generate("", prompt, params, prompt_tokens):
            yield event

    async def complete(self, prompt: str, params: SamplingParams) -> AsyncIterator[Event]:
        async for event in self._generate("/generate_stream", prompt, params, None):
            yield event

    async def render(self, messages: list[ChatMessage]) -> str | None:
        body = await self._metadata(
            "POST", "/chat_tokenize", json={"model": "tgi", "messages": messages}
        )
        return None if body is None else str(body.get("templated_text", ""))

    async def _generate(
        self, path: str, prompt: str, params: SamplingParams, prompt_tokens: int | None
    ) -> AsyncIterator[Event]:
        """Stream ``prompt``'s continuation from ``path`` (``/`` and ``/generate_stream``
        answer alike), ending with the Finish the last event's details make."""
        body = _request_body(prompt, params)
        timeout = http.timeout(self.timeouts.total, self.timeouts.connect)
        wanted = params.alternatives
        finished = False
        async with http.opened(
            "POST", self.url + path, json=body, headers=self.headers, timeout=timeout
        ) as response:
            async for event, details in _events(response):
                if not event.token.special:
                    yield _token(event, wanted)
                if event.details is not None:
                    finished = True
                    model_id, revision = await self._model_id()
                    yield Finish(
                        reason=str(event.details.finish_reason.value),
                        prompt_tokens=prompt_tokens or details.get("input_length"),
                        generated_tokens=event.details.generated_tokens,
                        model_id=model_id,
                        revision=revision,
                    )
        if not finished:
            raise unfinished_error()

    async def _render(self, messages: list[ChatMessage]) -> tuple[str, int | None]:
        """Return the prompt in the model's chat template, and its length in tokens."""
        body = await self._metadata(
            "POST", "/chat_tokenize", json={"model": "tgi", "messages": messages}
        )
        if body is None:  # an older TGI without /chat_tokenize
            return _chatml(messages), None
        return body["templated_text"], len(body.get("tokenize_response") or []) or None

    async def _model_id(self) -> tuple[str, str]:
        """Return the served model's id and revision (its commit sha), as TGI's /info says.

        The reply is complete by then: a server that cannot say leaves them empty.
        """
        try:
            info = await self._metadata("GET", "/info")
        except BackendError:
            info = None
        if not info:
            return "", ""
        return str(info.get("model_id") or ""), str(info.get("model_sha") or "")

    async def _metadata(self, method: str, path: str, **kwargs: object) -> dict | None:
        """Return a metadata request's JSON answer, or None where TGI has no such route."""
        timeout = http.timeout(METADATA_TIMEOUT, self.timeouts.connect)
        async with http.opened(
            method,
            self.url + path,
            missing_ok=True,
            headers=self.headers,
            timeout=timeout,
            **kwargs,
        ) as response:
            if response.status == 404:
                return None
            return await http.json_body(response)


def _request_body(prompt: str, params: SamplingParams) -> dict:
    """Return the body ``generate_stream`` would send, checked by the client's types.

    The client's types refuse a frequency_penalty at or below 0, which TGI takes
    from -2 to 2 (``inference.params`` checks that range): it is added after them.
    """
    kwargs = params_to_tgi(params)
    kwargs["stop"] = kwargs.pop("stop_sequences", [])
    frequency_penalty = kwargs.pop("frequency_penalty", None)
    try:
        parameters = Parameters(best_of=None, details=True, decoder_input_details=False, **kwargs)
        body = Request(inputs=prompt, stream=True, parameters=parameters).model_dump(mode="json")
    except (ValidationError, tgi_errors.ValidationError) as exc:
        raise rejected_error(server_reason(str(exc).splitlines()[0])) from exc
    if frequency_penalty is not None:
        body["parameters"]["frequency_penalty"] = frequency_penalty
    return body


def _token(event: StreamResponse, wanted: int | None) -> Token:
    """Return the event's token, with its logprob and ``wanted`` alternatives if asked."""
    if wanted is None:
        return Token(event.token.text)
    ranked = sorted(
        (t for t in event.top_tokens or () if t.logprob is not None),
        key=lambda t: -(t.logprob or 0.0),
    )
    top = tuple(Alternative(t.text, float(t.logprob or 0.0)) for t in ranked[:wanted])
    return Token(event.token.text, event.token.logprob, top)


async def _events(
    response: aiohttp.ClientResponse,
) -> AsyncIterator[tuple[StreamResponse, dict[str, Any]]]:
    """Yield the stream's token events, each with its details as sent (TGI's newer fields,
    such as ``input_length``, are not in the client's types); raise the error an error
    event carries."""
    async for line in http.lines(response):
        if not line.startswith(b"data:"):
            continue
        try:
            payload = json.loads(line[5:])
            if "token" not in payload and "error" in payload:
                raise event_error(payload)
            event = StreamResponse(**payload)
        except BackendError:
            raise
        except ValueError as exc:  # not JSON, or not an event (pydantic's errors are ValueErrors)
            raise malformed_error() from exc
        yield event, payload.get("details") or {}


def _chatml(messages: list[ChatMessage]) -> str:
    """ChatML for a TGI without /chat_tokenize. Markers typed in a message are broken up
    (a zero-width space after ``<``), so a user cannot end their turn and open another."""
    turns = "".join(
        f"<|im_start|>{m['role']}\n{_unmarked(m['content'])}<|im_end|>\n" for m in messages
    )
    return turns + "<|im_start|>assistant\n"


def _unmarked(text: str) -> str:
    return text.replace("<|", "<\u200b|")
