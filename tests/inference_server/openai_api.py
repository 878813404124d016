"""The OpenAI side: /v1/models and /v1/chat/completions (/v1/completions: completions.py)."""

from __future__ import annotations

import itertools
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Send

from . import engine
from .engine import WatchedResponse, dumps
from .scripts import (
    Script,
    ScriptError,
    apply_stop,
    count_tokens,
    find_directive,
    message_text,
    render_chatml,
)
from .state import ERROR, FAILED, GENERATION, OK, Record, ServerState

MODEL_ID = "scripted/openai-model"

ERROR_KINDS = {  # status -> (type, code)
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("not_found_error", "model_not_found"),
    409: ("conflict_error", None),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "timeout"),
}
DEFAULT_MESSAGES = {
    400: "Bad request (scripted).",
    401: "Incorrect API key provided (scripted).",
    404: "The model does not exist (scripted).",
    422: "Unprocessable entity (scripted).",
    429: "Rate limit reached (scripted). Please try again later.",
    500: "The server had an error while processing your request (scripted).",
    503: "The server is overloaded or not ready yet (scripted).",
}
FINISH_REASONS = {"eos_token": "stop", "stop_sequence": "stop"}

_ids = itertools.count(1)


def models() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "scripted"}],
    }


def error_json(message: str, error_type: str, param: str | None, code: Any) -> bytes:
    return dumps(
        {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    ).encode()


class Invalid(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.param = param
        self.code = code


def _number(body: dict[str, Any], name: str, lo: float, hi: float | None) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = type(value).__name__
        raise Invalid(
            f"Invalid type for '{name}': expected a decimal, but got {kind} instead.",
            name,
            "invalid_type",
        )
    if value < lo:
        raise Invalid(
            f"Invalid '{name}': decimal below minimum value. "
            f"Expected a value >= {lo:g}, but got {value} instead.",
            name,
            "decimal_below_min_value",
        )
    if hi is not None and value > hi:
        raise Invalid(
            f"Invalid '{name}': decimal above maximum value. "
            f"Expected a value <= {hi:g}, but got {value} instead.",
            name,
            "decimal_above_max_value",
        )


def validate(body: Any) -> tuple[list[dict[str, Any]], int | None, list[str]]:
    """Validate like the OpenAI API; returns (messages, max_tokens, stop)."""
    if not isinstance(body, dict):
        raise Invalid("The request body must be a JSON object.")
    messages = body.get("messages")
    if messages is None:
        raise Invalid(
            "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
        )
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise Invalid(
            "Invalid type for 'messages': expected an array of objects.", "messages", "invalid_type"
        )
    if not messages:
        raise Invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            "messages",
            "empty_array",
        )
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "frequency_penalty", -2, 2)
    _number(body, "presence_penalty", -2, 2)
    max_tokens = None
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"Invalid type for '{name}': expected an integer.", name, "invalid_type")
        if value < 1:
            raise Invalid(
                f"Invalid '{name}': integer below minimum value. "
                f"Expected a value >= 1, but got {value} instead.",
                name,
                "integer_below_min_value",
            )
        max_tokens = value if max_tokens is None else min(max_tokens, value)
    if body.get("stream_options") is not None and not body.get("stream"):
        raise Invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    stop = body.get("stop")
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    elif not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise Invalid(
            "Invalid type for 'stop': expected a string or an array of strings.",
            "stop",
            "invalid_type",
        )
    return messages, max_tokens, stop


def script_error(script: Script, status: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    if (verbatim := engine.error_body(script)) is not None:
        return verbatim
    error_type, code = ERROR_KINDS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    message = script.error or DEFAULT_MESSAGES.get(status, f"Scripted error {status}.")
    return error_json(message, script.error_type or error_type, None, code), engine.JSON_HEADERS


def failure_json(script: Script, sent: int) -> bytes:
    message = script.error or f"Generation failed (scripted) after {sent} tokens."
    return error_json(message, script.error_type or "server_error", None, None)


class Completion:
    def __init__(
        self, script: Script, body: dict[str, Any], max_tokens: int | None, stop: list[str]
    ):
        self.script = script
        self.model = body.get("model") or MODEL_ID
        self.id = f"chatcmpl-scripted-{next(_ids)}"
        self.created = int(time.time())
        self.prompt_tokens = count_tokens(render_chatml(body["messages"]))
        tokens, truncated = script.reply_tokens(max_tokens)
        tokens, stopped = apply_stop(tokens, stop, keep=False)
        natural = "stop" if stopped or not truncated else "length"
        finish = script.finish_reason or natural
        self.finish_reason = FINISH_REASONS.get(finish, finish)
        self.plan = engine.plan_for(script, tokens)
        options = body.get("stream_options") or {}
        self.include_usage = bool(options.get("include_usage"))
        head = (
            f'{{"id":"{self.id}","object":"chat.completion.chunk","created":{self.created},'
            f'"model":{dumps(self.model)},"system_fingerprint":null,'
        )
        usage_null = ',"usage":null' if self.include_usage else ""
        self._content_head = "data: " + head + '"choices":[{"index":0,"delta":{"content":'
        self._content_tail = '},"logprobs":null,"finish_reason":null}]' + usage_null + "}\n\n"
        self._role = (
            "data: " + head + '"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
            '"logprobs":null,"finish_reason":null}]' + usage_null + "}\n\n"
        )
        self._head = head
        self._usage_null = usage_null

    def usage(self) -> dict[str, int]:
        completion = len(self.plan.tokens)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }

    def render(self, i: int, j: int) -> bytes:
        out = [self._role] if i == 0 else []
        head, tail = self._content_head, self._content_tail
        out.extend(head + dumps(t) + tail for t in self.plan.tokens[i:j])
        return "".join(out).encode()

    def ending(self) -> bytes:
        out = [
            "data: " + self._head + '"choices":[{"index":0,"delta":{},"logprobs":null,'
            f'"finish_reason":{dumps(self.finish_reason)}}}]' + self._usage_null + "}\n\n"
        ]
        if self.include_usage:
            out.append("data: " + self._head + f'"choices":[],"usage":{dumps(self.usage())}}}\n\n')
        out.append("data: [DONE]\n\n")
        return "".join(out).encode()

    def response_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "".join(self.plan.tokens),
                        "refusal": None,
                    },
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": self.usage(),
        }


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


class OpenAIRequest:
    """What the two generation routes share: the request's record, its refusals and answers."""

    def __init__(self, state: ServerState, record: Record, body: Any, parse_error: str | None):
        self.state, self.record, self.body, self.parse_error = state, record, body, parse_error
        self.stream = isinstance(body, dict) and bool(body.get("stream"))
        record.stream = self.stream

    @classmethod
    async def read(cls, request: Request) -> OpenAIRequest:
        state: ServerState = request.app.state.server
        body, parse_error = await engine.read_json(request)
        record = state.new_record(request.url.path, body, kind=GENERATION, protocol="openai")
        return cls(state, record, body, parse_error)

    def reject(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: Any = None,
        error_type: str = "invalid_request_error",
    ) -> Response:
        self.state.finish(self.record, ERROR, status=status)
        return Response(
            error_json(message, error_type, param, code), status, media_type="application/json"
        )

    def refusal(self) -> Response | None:
        """The answer to a body that is not JSON, or to a request over the server's capacity."""
        if self.parse_error is not None:
            return self.reject(
                400, f"We could not parse the JSON body of your request: {self.parse_error}"
            )
        state = self.state
        if state.max_concurrent_requests and state.in_flight >= state.max_concurrent_requests:
            error_type, code = ERROR_KINDS[429]
            return self.reject(429, DEFAULT_MESSAGES[429], None, code, error_type)
        return None

    def script_for(self, text: str) -> Script:
        """The script a directive in ``text`` gives, else the server's next one."""
        found = find_directive(text)
        if found is not None:
            script, source = Script.from_json(found), "directive"
        else:
            script, source = self.state.next_script()
        self.record.script, self.record.script_source = script.to_json(), source
        return script

    def answer(self, script: Script, completion: Any, *, empty_chunk: bool) -> WatchedResponse:
        """Answer with ``completion`` (its plan, chunks and whole body) as the script says:
        server-sent events or one JSON body. ``empty_chunk``: a reply with no tokens
        still sends one chunk before its ending, as a chat completion does."""
        state, record, plan = self.state, self.record, completion.plan

        async def produce_stream(send: Send) -> None:
            if await engine.scripted_refusal(send, state, record, script, script_error):
                return
            record.status = 200
            await engine.start(send, 200, engine.SSE_HEADERS)
            count = len(plan.tokens)
            render = completion.render
            await engine.paced(
                send, record, count=count, render=render, script=script, content_count=count
            )
            if plan.end == "finish":
                if empty_chunk and not plan.tokens:
                    await engine.body(send, completion.render(0, 0), more=True)
                state.finish(record, OK)
                await engine.body(send, completion.ending(), more=False)
            elif plan.end == "fail":
                state.finish(record, FAILED)
                event = failure_json(script, record.tokens_sent)
                await engine.body(send, b"data: " + event + b"\n\n", more=False)
            else:
                await engine.break_off(state, record, plan.end)

        async def produce_once(send: Send) -> None:
            if await engine.scripted_refusal(send, state, record, script, script_error):
                return
            await engine.simulate_generation(script, len(plan.tokens))
            if plan.end in ("hang", "drop"):
                record.status = 200
                await engine.start(send, 200, engine.JSON_HEADERS)
                await engine.break_off(state, record, plan.end)
            elif plan.end == "fail":
                state.finish(record, FAILED, status=500)
                await engine.respond(send, 500, failure_json(script, len(plan.tokens)))
            else:
                record.tokens_sent = len(plan.tokens)
                record.first_token_at = time.time()
                state.finish(record, OK, status=200)
                await engine.respond(send, 200, dumps(completion.response_json()).encode())

        return WatchedResponse(state, record, produce_stream if self.stream else produce_once)


async def chat_completions(request: Request) -> Response | WatchedResponse:
    call = await OpenAIRequest.read(request)
    refused = call.refusal()
    if refused is not None:
        return refused
    try:
        messages, max_tokens, stop = validate(call.body)
    except Invalid as exc:
        return call.reject(400, str(exc), exc.param, exc.code)
    try:
        script = call.script_for(last_user_text(messages))
    except ScriptError as exc:
        return call.reject(400, str(exc), "messages")
    completion = Completion(script, call.body, max_tokens, stop)
    return call.answer(script, completion, empty_chunk=True)
