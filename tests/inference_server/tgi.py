"""The text-generation-inference side: /generate, /generate_stream, / and friends."""

from __future__ import annotations

import time
import zlib
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Send

from . import engine
from .engine import WatchedResponse, dumps
from .scripts import (
    Script,
    ScriptError,
    alternatives,
    apply_stop,
    count_tokens,
    find_directive,
    last_user_text_of_prompt,
    render_chatml,
    tokenize,
)
from .state import ERROR, FAILED, GENERATION, META, OK, SERVED, ServerState

MODEL_ID = "scripted/tgi-model"
MAX_INPUT_TOKENS = 4095
MAX_TOTAL_TOKENS = 4096
MAX_STOP_SEQUENCES = 4
MAX_BEST_OF = 2
MAX_TOP_N_TOKENS = 5
EOS_TOKEN_ID = 2
LOGPROB = -0.1

ERROR_TYPES = {
    400: "bad_request",
    404: "not_found",
    422: "validation",
    424: "generation",
    429: "overloaded",
    500: "generation",
    501: "not_supported",
    502: "unavailable",
    503: "unavailable",
    504: "timeout",
}
DEFAULT_MESSAGES = {
    422: "Input validation error: scripted validation failure",
    424: "Request failed during generation: scripted failure",
    429: "Model is overloaded",
    500: "Request failed during generation: scripted failure",
    503: "Service Unavailable",
}
FINISH_REASONS = {"stop": "eos_token"}


def info(max_concurrent_requests: int) -> dict[str, Any]:
    return {
        "model_id": MODEL_ID,
        "model_sha": "0000",
        "model_dtype": "float16",
        "model_device_type": "cpu",
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": max_concurrent_requests or 128,
        "max_best_of": MAX_BEST_OF,
        "max_stop_sequences": MAX_STOP_SEQUENCES,
        "max_input_tokens": MAX_INPUT_TOKENS,
        "max_input_length": MAX_INPUT_TOKENS,
        "max_total_tokens": MAX_TOTAL_TOKENS,
        "waiting_served_ratio": 0.3,
        "max_batch_total_tokens": 1_000_000,
        "max_waiting_tokens": 20,
        "max_batch_size": None,
        "validation_workers": 2,
        "max_client_batch_size": 4,
        "router": "text-generation-router",
        "version": "3.0.0-scripted",
        "sha": None,
        "docker_label": None,
    }


def error_body(message: str, error_type: str | None) -> bytes:
    payload: dict[str, Any] = {"error": message}
    if error_type is not None:
        payload["error_type"] = error_type
    return dumps(payload).encode()


def error_response(status: int, message: str, error_type: str | None) -> Response:
    return Response(error_body(message, error_type), status, media_type="application/json")


def token_id(text: str) -> int:
    return 100 + zlib.crc32(text.encode()) % 32000


def token_json(text: str, special: bool = False, logprob: float = LOGPROB) -> str:
    tid = EOS_TOKEN_ID if special else token_id(text)
    flag = "true" if special else "false"
    return f'{{"id":{tid},"text":{dumps(text)},"logprob":{logprob},"special":{flag}}}'


def top_tokens_json(text: str, logprob: float, count: int, special: bool = False) -> str:
    """The ``top_tokens`` of one event: the chosen token among ``count`` most likely."""
    pairs = alternatives(text, logprob, count)
    return "[" + ",".join(token_json(t, special and t == text, lp) for t, lp in pairs) + "]"


class Invalid(Exception):
    pass


def _num(params: dict[str, Any], name: str, *, integer: bool = False) -> Any:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(
            "Failed to deserialize the JSON body into the target type: "
            f"parameters.{name}: invalid type: expected {'integer' if integer else 'float'}"
        )
    if integer and not isinstance(value, int):
        raise Invalid(
            "Failed to deserialize the JSON body into the target type: "
            f"parameters.{name}: invalid type: floating point, expected integer"
        )
    return value


def validate(body: Any) -> tuple[str, dict[str, Any]]:
    """Validate like TGI's router; returns (inputs, parameters) or raises ``Invalid``."""
    if not isinstance(body, dict):
        raise Invalid("Failed to deserialize the JSON body into the target type: expected a map")
    inputs = body.get("inputs")
    if not isinstance(inputs, str):
        raise Invalid(
            "Failed to deserialize the JSON body into the target type: missing field `inputs`"
        )
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise Invalid(
            "Failed to deserialize the JSON body into the target type: "
            "parameters: invalid type: expected struct GenerateParameters"
        )
    prefix = "Input validation error: "
    temperature = _num(params, "temperature")
    if temperature is not None and temperature <= 0:
        raise Invalid(prefix + "`temperature` must be strictly positive")
    repetition_penalty = _num(params, "repetition_penalty")
    if repetition_penalty is not None and repetition_penalty <= 0:
        raise Invalid(prefix + "`repetition_penalty` must be strictly positive")
    frequency_penalty = _num(params, "frequency_penalty")
    if frequency_penalty is not None and not -2.0 <= frequency_penalty <= 2.0:
        raise Invalid(prefix + "`frequency_penalty` must be >= -2.0 and <= 2.0")
    for name in ("top_p", "typical_p"):
        value = _num(params, name)
        if value is not None and not 0.0 < value < 1.0:
            raise Invalid(prefix + f"`{name}` must be > 0.0 and < 1.0")
    top_k = _num(params, "top_k", integer=True)
    if top_k is not None and top_k <= 0:
        raise Invalid(prefix + "`top_k` must be strictly positive")
    top_n_tokens = _num(params, "top_n_tokens", integer=True)
    if top_n_tokens is not None and not 0 <= top_n_tokens <= MAX_TOP_N_TOKENS:
        raise Invalid(
            prefix + f"`top_n_tokens` must be >= 0 and <= {MAX_TOP_N_TOKENS}. Given: {top_n_tokens}"
        )
    truncate = _num(params, "truncate", integer=True)
    if truncate is not None and not 0 < truncate < MAX_INPUT_TOKENS:
        raise Invalid(
            prefix + f"`truncate` must be strictly positive and less than {MAX_INPUT_TOKENS}. "
            f"Given: {truncate}"
        )
    grammar = params.get("grammar")
    if grammar is not None and (
        not isinstance(grammar, dict) or grammar.get("type") not in ("json", "regex")
    ):
        raise Invalid(
            "Failed to deserialize the JSON body into the target type: parameters.grammar: "
            "unknown variant, expected `json` or `regex`"
        )
    best_of = _num(params, "best_of", integer=True)
    if best_of is not None and best_of > MAX_BEST_OF:
        raise Invalid(prefix + f"`best_of` must be > 0 and <= {MAX_BEST_OF}. Given: {best_of}")
    max_new_tokens = _num(params, "max_new_tokens", integer=True)
    if max_new_tokens is not None and max_new_tokens <= 0:
        raise Invalid(prefix + "`max_new_tokens` must be strictly positive")
    stop = params.get("stop") or []
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise Invalid(
            "Failed to deserialize the JSON body into the target type: "
            "parameters.stop: invalid type: expected a sequence of strings"
        )
    if len(stop) > MAX_STOP_SEQUENCES:
        raise Invalid(
            prefix + f"`stop` supports up to {MAX_STOP_SEQUENCES} stop sequences. "
            f"Given: {len(stop)}"
        )
    if not inputs:
        raise Invalid(prefix + "`inputs` cannot be empty")
    input_tokens = count_tokens(inputs)
    if input_tokens > MAX_INPUT_TOKENS:
        raise Invalid(
            prefix + f"`inputs` must have less than {MAX_INPUT_TOKENS} tokens. "
            f"Given: {input_tokens}"
        )
    if max_new_tokens is not None and input_tokens + max_new_tokens > MAX_TOTAL_TOKENS:
        raise Invalid(
            prefix + f"`inputs` tokens + `max_new_tokens` must be <= {MAX_TOTAL_TOKENS}. "
            f"Given: {input_tokens} `inputs` tokens and {max_new_tokens} `max_new_tokens`"
        )
    if max_new_tokens is None:
        max_new_tokens = MAX_TOTAL_TOKENS - input_tokens
    return inputs, {
        **params,
        "max_new_tokens": max_new_tokens,
        "stop": stop,
        "input_length": input_tokens,
    }


class Generation:
    """One scripted TGI generation, rendered in TGI's wire format."""

    def __init__(self, script: Script, inputs: str, params: dict[str, Any]) -> None:
        self.script = script
        self.inputs = inputs
        self.params = params
        tokens, truncated = script.reply_tokens(params["max_new_tokens"])
        tokens, stopped = apply_stop(tokens, params["stop"], keep=True)
        if stopped:
            natural = "stop_sequence"
        elif truncated:
            natural = "length"
        else:
            natural = "eos_token"
        finish = script.finish_reason or natural
        self.finish_reason = FINISH_REASONS.get(finish, finish)
        self.plan = engine.plan_for(script, tokens)
        self.text = "".join(self.plan.tokens)
        # A natural end-of-sequence closes with the special EOS token, as TGI streams it.
        self.eos = (
            script.eos_token
            if self.plan.end == "finish" and self.finish_reason == "eos_token"
            else None
        )
        if self.plan.end == "finish" and not self.plan.tokens and self.eos is None:
            self.eos = ""  # TGI always sends at least one token
        logprobs = [script.logprob(i) for i in range(len(self.plan.tokens))]
        self.events = [token_json(t, logprob=lp) for t, lp in zip(self.plan.tokens, logprobs)]
        top_n = params.get("top_n_tokens") or 0
        self.top = [top_tokens_json(t, lp, top_n) for t, lp in zip(self.plan.tokens, logprobs)]
        if self.eos is not None:
            self.events.append(token_json(self.eos, special=True))
            self.top.append(top_tokens_json(self.eos, LOGPROB, top_n, special=True))
        if not top_n:
            self.top = ["null"] * len(self.events)
        self.details_wanted = bool(params.get("details"))
        self.seed = params.get("seed") if params.get("do_sample") else None
        if params.get("return_full_text"):
            self.text = inputs + self.text

    def details(self) -> dict[str, Any]:
        return {
            "finish_reason": self.finish_reason,
            "generated_tokens": len(self.events),
            "seed": self.seed,
            "input_length": self.params["input_length"],
        }

    def render(self, i: int, j: int) -> bytes:
        last = len(self.events) - 1 if self.plan.end == "finish" else -1
        out = []
        for k in range(i, j):
            if k == last:
                details = dumps(self.details()) if self.details_wanted else "null"
                tail = f'"generated_text":{dumps(self.text)},"details":{details}'
            else:
                tail = '"generated_text":null,"details":null'
            out.append(
                f'data:{{"index":{k + 1},"token":{self.events[k]},{tail},'
                f'"top_tokens":{self.top[k]}}}\n\n'
            )
        return "".join(out).encode()

    def response_json(self) -> dict[str, Any]:
        details = None
        if self.details_wanted:
            details = {
                **self.details(),
                "prefill": [],
                "tokens": [
                    {
                        "id": token_id(t),
                        "text": t,
                        "logprob": self.script.logprob(i),
                        "special": False,
                    }
                    for i, t in enumerate(self.plan.tokens)
                ],
            }
            del details["input_length"]
            if self.eos is not None:
                details["tokens"].append(
                    {"id": EOS_TOKEN_ID, "text": self.eos, "logprob": LOGPROB, "special": True}
                )
        if details is None:
            return {"generated_text": self.text}
        return {"generated_text": self.text, "details": details}


def script_error(script: Script, status: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    if (verbatim := engine.error_body(script)) is not None:
        return verbatim
    message = script.error or DEFAULT_MESSAGES.get(status, f"Scripted error {status}")
    error_type = script.error_type or ERROR_TYPES.get(status, "error")
    return error_body(message, error_type), engine.JSON_HEADERS


def failure_message(script: Script, sent: int) -> str:
    return script.error or f"Request failed during generation: scripted failure after {sent} tokens"


async def generate(request: Request, *, stream: bool | None) -> Response | WatchedResponse:
    """Handle /generate (stream=False), /generate_stream (True) and / (None: body decides)."""
    state: ServerState = request.app.state.server
    body, parse_error = await engine.read_json(request)
    record = state.new_record(request.url.path, body, kind=GENERATION, protocol="tgi")
    if stream is None:
        stream = bool(body.get("stream")) if isinstance(body, dict) else False
        as_list = True
    else:
        as_list = False
    record.stream = stream

    def reject(status: int, message: str, error_type: str) -> Response:
        state.finish(record, ERROR, status=status)
        return error_response(status, message, error_type)

    if parse_error is not None:
        return reject(
            422,
            f"Failed to parse the request body as JSON: {parse_error}",
            "validation",
        )
    if state.max_concurrent_requests and state.in_flight >= state.max_concurrent_requests:
        return reject(429, "Model is overloaded", "overloaded")
    try:
        inputs, params = validate(body)
    except Invalid as exc:
        return reject(422, str(exc), "validation")
    try:
        found = find_directive(last_user_text_of_prompt(inputs))
        if found is not None:
            script, source = Script.from_json(found), "directive"
        else:
            script, source = state.next_script()
    except ScriptError as exc:
        return reject(422, f"Input validation error: {exc}", "validation")
    record.script, record.script_source = script.to_json(), source
    gen = Generation(script, inputs, params)

    async def produce_stream(send: Send) -> None:
        if await engine.scripted_refusal(send, state, record, script, script_error):
            return
        record.status = 200
        await engine.start(send, 200, engine.SSE_HEADERS)
        await engine.paced(
            send,
            record,
            count=len(gen.events),
            render=gen.render,
            script=script,
            content_count=len(gen.plan.tokens),
            before_last=(lambda: state.finish(record, OK)) if gen.plan.end == "finish" else None,
        )
        if gen.plan.end == "finish":
            state.finish(record, OK)
            await engine.body(send, b"", more=False)
        elif gen.plan.end == "fail":
            event = error_body(
                failure_message(script, record.tokens_sent), script.error_type or "generation"
            )
            state.finish(record, FAILED)
            await engine.body(send, b"data:" + event + b"\n\n", more=False)
        else:
            await engine.break_off(state, record, gen.plan.end)

    async def produce_once(send: Send) -> None:
        if await engine.scripted_refusal(send, state, record, script, script_error):
            return
        await engine.simulate_generation(script, len(gen.plan.tokens))
        if gen.plan.end in ("hang", "drop"):
            record.status = 200
            await engine.start(send, 200, engine.JSON_HEADERS)
            await engine.break_off(state, record, gen.plan.end)
        elif gen.plan.end == "fail":
            data = error_body(
                failure_message(script, len(gen.plan.tokens)), script.error_type or "generation"
            )
            state.finish(record, FAILED, status=500)
            await engine.respond(send, 500, data)
        else:
            payload = gen.response_json()
            record.tokens_sent = len(gen.plan.tokens)
            record.first_token_at = time.time()
            state.finish(record, OK, status=200)
            await engine.respond(send, 200, dumps([payload] if as_list else payload).encode())

    return WatchedResponse(state, record, produce_stream if stream else produce_once)


async def chat_tokenize(request: Request) -> Response:
    state: ServerState = request.app.state.server
    body, parse_error = await engine.read_json(request)
    record = state.new_record(request.url.path, body, kind=META, protocol="tgi")
    messages = body.get("messages") if isinstance(body, dict) else None
    if (
        parse_error is not None
        or not isinstance(messages, list)
        or not all(isinstance(m, dict) for m in messages)
    ):
        state.finish(record, ERROR, status=422)
        return error_response(
            422,
            "Failed to deserialize the JSON body into the target type: missing field `messages`",
            "validation",
        )
    text = render_chatml(messages)
    tokens = [
        {"id": token_id(t), "text": t, "start": start, "stop": stop}
        for t, start, stop in tokenize(text)
    ]
    state.finish(record, SERVED, status=200)
    return JSONResponse({"tokenize_response": tokens, "templated_text": text})


async def tokenize_endpoint(request: Request) -> Response:
    state: ServerState = request.app.state.server
    body, _ = await engine.read_json(request)
    record = state.new_record(request.url.path, body, kind=META, protocol="tgi")
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, str):
        state.finish(record, ERROR, status=422)
        return error_response(
            422,
            "Failed to deserialize the JSON body into the target type: missing field `inputs`",
            "validation",
        )
    state.finish(record, SERVED, status=200)
    return JSONResponse(
        [
            {"id": token_id(t), "text": t, "start": start, "stop": stop}
            for t, start, stop in tokenize(inputs)
        ]
    )
