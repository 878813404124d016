"""The OpenAI side's raw text completions: /v1/completions, streaming and not, with logprobs."""

from __future__ import annotations

import itertools
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from . import engine
from .engine import WatchedResponse, dumps
from .openai_api import (
    FINISH_REASONS,
    MODEL_ID,
    Invalid,
    OpenAIRequest,
    _number,
)
from .scripts import Script, ScriptError, alternatives, apply_stop, count_tokens

MAX_LOGPROBS = 5
MAX_STOP = 4
DEFAULT_MAX_TOKENS = 16  # OpenAI's default for completions

_ids = itertools.count(1)


def _integer(body: dict[str, Any], name: str, lo: int, hi: int | None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"Invalid type for '{name}': expected an integer.", name, "invalid_type")
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if value < lo else f"<= {hi}"
        raise Invalid(
            f"Invalid '{name}': integer out of range. Expected a value {bound}, "
            f"but got {value} instead.",
            name,
            "integer_out_of_range",
        )
    return value


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if prompt is None:
        raise Invalid(
            "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"
        )
    if not isinstance(prompt, str):
        raise Invalid(
            "Invalid type for 'prompt': the scripted server takes one string.",
            "prompt",
            "invalid_type",
        )
    return prompt


def validate(body: Any) -> tuple[str, int, list[str], int | None]:
    """Validate like the OpenAI API; returns (prompt, max_tokens, stop, logprobs)."""
    if not isinstance(body, dict):
        raise Invalid("The request body must be a JSON object.")
    prompt = _prompt(body)
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "frequency_penalty", -2, 2)
    _number(body, "presence_penalty", -2, 2)
    max_tokens = _integer(body, "max_tokens", 1, None) or DEFAULT_MAX_TOKENS
    logprobs = _integer(body, "logprobs", 0, MAX_LOGPROBS)
    if body.get("stream_options") is not None and not body.get("stream"):
        raise Invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    stop = body.get("stop")
    stop = [] if stop is None else [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise Invalid(
            "Invalid type for 'stop': expected a string or an array of strings.",
            "stop",
            "invalid_type",
        )
    if len(stop) > MAX_STOP:
        raise Invalid(
            f"Invalid 'stop': array too long. Expected an array with maximum length {MAX_STOP}.",
            "stop",
            "array_above_max_length",
        )
    return prompt, max_tokens, stop, logprobs


class TextCompletion:
    def __init__(
        self,
        script: Script,
        body: dict[str, Any],
        prompt: str,
        max_tokens: int,
        stop: list[str],
        logprobs: int | None,
    ) -> None:
        self.model = body.get("model") or MODEL_ID
        self.id = f"cmpl-scripted-{next(_ids)}"
        self.created = int(time.time())
        self.prompt_tokens = count_tokens(prompt)
        tokens, truncated = script.reply_tokens(max_tokens)
        tokens, stopped = apply_stop(tokens, stop, keep=False)
        finish = script.finish_reason or ("stop" if stopped or not truncated else "length")
        self.finish_reason = FINISH_REASONS.get(finish, finish)
        self.plan = engine.plan_for(script, tokens)
        self.script = script
        self.logprobs = logprobs
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self._head = (
            f'{{"id":"{self.id}","object":"text_completion","created":{self.created},'
            f'"model":{dumps(self.model)},"system_fingerprint":null,'
        )
        self._usage_null = ',"usage":null' if self.include_usage else ""
        self.offsets = list(itertools.accumulate((len(t) for t in tokens), initial=len(prompt)))

    def token_logprobs(self, i: int, j: int) -> dict[str, Any] | None:
        """The ``logprobs`` object of tokens i..j-1, when asked for."""
        if self.logprobs is None:
            return None
        tokens = self.plan.tokens[i:j]
        values = [self.script.logprob(k) for k in range(i, j)]
        count = self.logprobs + 1 if self.logprobs else 1  # the sampled token is always there
        return {
            "tokens": tokens,
            "token_logprobs": values,
            "top_logprobs": [dict(alternatives(t, lp, count)) for t, lp in zip(tokens, values)],
            "text_offset": self.offsets[i:j],
        }

    def _chunk(self, text: str, logprobs: Any, finish: str | None) -> str:
        choice = {"text": text, "index": 0, "logprobs": logprobs, "finish_reason": finish}
        return f'data: {self._head}"choices":[{dumps(choice)}]{self._usage_null}}}\n\n'

    def usage(self) -> dict[str, int]:
        completion = len(self.plan.tokens)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }

    def render(self, i: int, j: int) -> bytes:
        return "".join(
            self._chunk(self.plan.tokens[k], self.token_logprobs(k, k + 1), None)
            for k in range(i, j)
        ).encode()

    def ending(self) -> bytes:
        out = [self._chunk("", None, self.finish_reason)]
        if self.include_usage:
            out.append(f'data: {self._head}"choices":[],"usage":{dumps(self.usage())}}}\n\n')
        out.append("data: [DONE]\n\n")
        return "".join(out).encode()

    def response_json(self) -> dict[str, Any]:
        choice = {
            "text": "".join(self.plan.tokens),
            "index": 0,
            "logprobs": self.token_logprobs(0, len(self.plan.tokens)),
            "finish_reason": self.finish_reason,
        }
        return {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [choice],
            "usage": self.usage(),
        }


async def completions(request: Request) -> Response | WatchedResponse:
    call = await OpenAIRequest.read(request)
    refused = call.refusal()
    if refused is not None:
        return refused
    try:
        prompt, max_tokens, stop, logprobs = validate(call.body)
        script = call.script_for(prompt)
    except Invalid as exc:
        return call.reject(400, str(exc), exc.param, exc.code)
    except ScriptError as exc:
        return call.reject(400, str(exc), "prompt")
    completion = TextCompletion(script, call.body, prompt, max_tokens, stop, logprobs)
    return call.answer(script, completion, empty_chunk=False)
