"""The bodies of ``/v1/chat/completions`` and ``/v1/completions``, checked field by field.

A field Gatehouse does not take is refused by name, as OpenAI refuses an
unrecognised argument, instead of being dropped silently; the fields that
tools built on the SDK send with their neutral value (``n: 1``,
``frequency_penalty: 0``…) pass. Sampling fields are checked against the
model's backend ranges (``inference.params``) so a 400 names the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inference.backends import ChatMessage
from inference.params import ParamsError, params_parse

from .errors import ApiError, bad_request

# OpenAI's name -> Gatehouse's sampling parameter (``top_k`` and ``repetition_penalty``
# are the extensions vLLM and llama.cpp read from the same body).
SAMPLING = {
    "max_tokens": "max_new_tokens",
    "max_completion_tokens": "max_new_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "repetition_penalty": "repetition_penalty",
    "seed": "seed",
    "stop": "stop",
}
# A raw completion also takes the backend's penalties and, as OpenAI's ``logprobs``
# (0 to 5), each token's log probability with that many alternatives.
COMPLETION_SAMPLING = {
    **SAMPLING,
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "logprobs": "logprobs",
}
# Accepted when they ask for what Gatehouse does anyway; refused otherwise.
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "frequency_penalty": (0,),
    "presence_penalty": (0,),
    "logprobs": (False,),
    "echo": (False,),
    "best_of": (1,),
    "parallel_tool_calls": (True, False),
    "tool_choice": ("none",),
    "tools": ([],),
    "functions": ([],),
    "response_format": ({"type": "text"},),
    "logit_bias": ({},),
    "suffix": ("",),
}
# Accepted and not acted upon: they describe the caller, not the reply.
IGNORED = {"user", "metadata", "store", "service_tier"}
COMMON = {"model", "stream", "stream_options", *SAMPLING, *NEUTRAL, *IGNORED}
CHAT_FIELDS = COMMON | {"messages"}
COMPLETION_FIELDS = COMMON | {"prompt"}
COMPLETION_NEUTRAL = {k: v for k, v in NEUTRAL.items() if k not in COMPLETION_SAMPLING}
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MAX_MODEL_NAME = 200


@dataclass(frozen=True)
class Call:
    """What one API call asks for, checked."""

    model: str
    stream: bool
    include_usage: bool
    raw: Mapping[str, Any]  # the sampling fields as sent, checked once the model is known
    messages: list[ChatMessage] = field(default_factory=list)
    prompt: str = ""


def body_parse(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"null")
    except (ValueError, RecursionError) as exc:
        raise bad_request(
            "The body must be a JSON object (Content-Type: application/json)."
        ) from exc
    if not isinstance(data, dict):
        raise bad_request("The body must be a JSON object.")
    _storable(data)
    return data


def _storable(data: dict[str, Any]) -> None:
    """Refuse text the database cannot hold, which JSON's escapes allow: a NUL character
    or an unpaired UTF-16 surrogate, in any string of the body (keys included)."""
    pending: list[Any] = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending += [*value.keys(), *value.values()]
        elif isinstance(value, list):
            pending += value
        elif isinstance(value, str):
            if "\x00" in value:
                raise bad_request("The body holds a NUL character (\\u0000), which text cannot.")
            try:
                value.encode()
            except UnicodeEncodeError as exc:
                raise bad_request("The body holds an unpaired UTF-16 surrogate.") from exc


def chat_parse(data: Mapping[str, Any]) -> Call:
    _known(data, CHAT_FIELDS)
    return Call(messages=_messages(data.get("messages")), **_common(data, NEUTRAL, SAMPLING))


def completion_parse(data: Mapping[str, Any]) -> Call:
    _known(data, COMPLETION_FIELDS)
    common = _common(data, COMPLETION_NEUTRAL, COMPLETION_SAMPLING)
    return Call(prompt=_prompt(data.get("prompt")), **common)


def _known(data: Mapping[str, Any], allowed: set[str]) -> None:
    for name in data:
        if name not in allowed:
            raise bad_request(
                f"Unrecognized request argument supplied: {name}.",
                param=name,
                code="unknown_parameter",
            )


def _common(
    data: Mapping[str, Any], neutral: dict[str, tuple[Any, ...]], sampling: dict[str, str]
) -> dict[str, Any]:
    model = data.get("model")
    if not isinstance(model, str) or not model.strip() or len(model) > MAX_MODEL_NAME:
        raise bad_request("'model' must name a model: GET /v1/models lists them.", param="model")
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false.", param="stream")
    for name, values in neutral.items():
        value = data.get(name)
        if value is not None and not any(_same(value, v) for v in values):
            raise bad_request(
                f"'{name}' is not supported by this server (only {values[0]!r}).",
                param=name,
                code="unsupported_parameter",
            )
    if "max_tokens" in data and "max_completion_tokens" in data:
        raise bad_request(
            "Send either 'max_tokens' or 'max_completion_tokens', not both.",
            param="max_completion_tokens",
        )
    return {
        "model": model,
        "stream": bool(stream),
        "include_usage": _include_usage(data.get("stream_options"), bool(stream)),
        "raw": {name: data[name] for name in sampling if data.get(name) is not None},
    }


def _same(value: Any, neutral: Any) -> bool:
    """Equal, and a boolean only where a boolean is meant (``True == 1`` in Python)."""
    return value == neutral and isinstance(value, bool) == isinstance(neutral, bool)


def _include_usage(options: Any, stream: bool) -> bool:
    if options is None:
        return False
    if not isinstance(options, dict) or set(options) - {"include_usage"}:
        raise bad_request("'stream_options' takes only 'include_usage'.", param="stream_options")
    include = options.get("include_usage", False)
    if not isinstance(include, bool):
        raise bad_request(
            "'stream_options.include_usage' must be true or false.", param="stream_options"
        )
    if not stream:
        raise bad_request(
            "'stream_options' is only allowed when 'stream' is true.", param="stream_options"
        )
    return include


def _messages(value: Any) -> list[ChatMessage]:
    if not isinstance(value, list) or not value:
        raise bad_request("'messages' must be a non-empty list of messages.", param="messages")
    messages: list[ChatMessage] = []
    for index, message in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise bad_request(f"'{where}' must be an object.", param=where)
        role = message.get("role")
        if role not in ROLES:
            raise bad_request(
                f"'{where}.role' must be one of system, developer, user or assistant.",
                param=f"{where}.role",
            )
        content = _content(message.get("content"), f"{where}.content")
        messages.append({"role": ROLES[role], "content": content})  # type: ignore[typeddict-item]
    if messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        raise bad_request("The last message must not be an empty assistant message.")
    return messages


def _content(value: Any, where: str) -> str:
    """A message's text: a string, or a list of text parts (other parts are refused)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise bad_request(
                    f"'{where}' may hold only text parts on this server.", param=where
                )
            if not isinstance(part.get("text"), str):
                raise bad_request(f"'{where}' text parts need a string 'text'.", param=where)
            texts.append(part["text"])
        return "".join(texts)
    raise bad_request(f"'{where}' must be a string or a list of text parts.", param=where)


def _prompt(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]  # the SDK's one-prompt batch
    if not isinstance(value, str) or not value:
        raise bad_request("'prompt' must be a non-empty string.", param="prompt")
    return value


def sampling_parse(
    raw: Mapping[str, Any], *, backend: Any, context_length: int | None, completion: bool = False
) -> dict[str, Any]:
    """Return the call's sampling fields under Gatehouse's names, checked one by one
    against the model's backend so a refusal names the field as the client sent it.

    A penalty of 0 that the backend has no use for is dropped: it asks for nothing.
    ``logprobs`` on TGI asks for each token's details and ``top_n_tokens`` alternatives.
    """
    params: dict[str, Any] = {}
    for name, value in raw.items():
        internal = (COMPLETION_SAMPLING if completion else SAMPLING)[name]
        wanted = _on_backend(internal, value, backend)
        try:
            params_parse(
                wanted, backend=backend, context_length=context_length, completion=completion
            )
        except ParamsError as exc:
            if name in NEUTRAL and any(_same(value, v) for v in NEUTRAL[name]):
                continue
            message = str(exc).replace(next(iter(wanted)), name, 1)
            raise ApiError(400, message, param=name, code="invalid_value") from exc
        params.update(wanted)
    return params


def _on_backend(name: str, value: Any, backend: Any) -> dict[str, Any]:
    if name == "logprobs" and backend == "tgi":
        if value == 0 and isinstance(value, int) and not isinstance(value, bool):
            return {"details": True}
        return {"top_n_tokens": value, "details": True}
    return {name: value}
