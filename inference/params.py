"""Sampling parameters, checked against each backend's valid ranges before sending.

A request that the backend would reject (TGI refuses ``temperature=0`` and
``top_p=1.0``, for example) is refused here with a sentence a person can act on,
instead of failing later as an opaque 422.

Two sets per backend: the chat set (``RANGES``: what a conversation's settings
offer) and the raw-completion set (``COMPLETION_RANGES``, ``COMPLETION_FLAGS``
and TGI's ``grammar``: every parameter the backend's completion call takes, as
the playground and ``/v1/completions`` send them). The completion set holds the
chat set, so a model's default parameters are valid in both.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

BackendKind = Literal["tgi", "openai"]
BACKEND_KINDS: tuple[BackendKind, ...] = ("tgi", "openai")
# The backends with a raw-completion call (TGI's /generate_stream, /v1/completions).
COMPLETION_BACKENDS: tuple[BackendKind, ...] = ("tgi", "openai")
MAX_STOP_SEQUENCES = 4
MAX_ALTERNATIVES = 5  # TGI's default max_top_n_tokens; OpenAI's completions allow logprobs <= 5
MAX_GRAMMAR_CHARS = 16_384
GRAMMAR_TYPES = ("json", "regex")
# No backend reads a number beyond a signed 64-bit integer; JSON allows any length, and
# a longer integer does not even convert to a float.
MAX_NUMBER = 2**63 - 1


class ParamsError(ValueError):
    """A sampling parameter is missing, malformed or outside the backend's range."""


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 512
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)
    seed: int | None = None
    # The raw-completion set only (see the module docstring).
    typical_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    truncate: int | None = None
    top_n_tokens: int | None = None  # TGI: the alternatives shown for each token
    logprobs: int | None = None  # OpenAI completions: the same (0: each token's own only)
    do_sample: bool | None = None
    watermark: bool | None = None
    details: bool | None = None  # TGI: each token's logprob, carried with the text
    grammar: dict[str, Any] | None = None  # TGI: {"type": "json" | "regex", "value": ...}

    def as_dict(self) -> dict[str, Any]:
        """Return the parameters that are set, as saved with each reply."""
        data = asdict(self)
        data["stop"] = list(self.stop)
        return {key: value for key, value in data.items() if value not in (None, [])}

    @property
    def alternatives(self) -> int | None:
        """How many alternatives to carry with each token; None: no token details at all."""
        if self.logprobs is not None:
            return self.logprobs
        if self.details or self.top_n_tokens:
            return self.top_n_tokens or 0
        return None


# name -> (type, lower bound, lower inclusive, upper bound, upper inclusive), per backend.
_Range = tuple[type, float | None, bool, float | None, bool]
RANGES: dict[BackendKind, dict[str, _Range]] = {
    "tgi": {
        "max_new_tokens": (int, 1, True, None, False),
        "temperature": (float, 0.0, False, None, False),
        "top_p": (float, 0.0, False, 1.0, False),
        "top_k": (int, 1, True, None, False),
        "repetition_penalty": (float, 0.0, False, None, False),
        "seed": (int, 0, True, None, False),
    },
    "openai": {
        "max_new_tokens": (int, 1, True, None, False),
        "temperature": (float, 0.0, True, 2.0, True),
        "top_p": (float, 0.0, False, 1.0, True),
        "top_k": (int, 1, True, None, False),
        "repetition_penalty": (float, 0.0, False, None, False),
        "seed": (int, 0, True, None, False),
    },
}


_COMPLETION_ONLY: dict[BackendKind, dict[str, _Range]] = {
    "tgi": {
        "typical_p": (float, 0.0, False, 1.0, False),
        "frequency_penalty": (float, -2.0, True, 2.0, True),
        "truncate": (int, 1, True, None, False),
        "top_n_tokens": (int, 0, True, MAX_ALTERNATIVES, True),
    },
    "openai": {
        "presence_penalty": (float, -2.0, True, 2.0, True),
        "frequency_penalty": (float, -2.0, True, 2.0, True),
        "logprobs": (int, 0, True, MAX_ALTERNATIVES, True),
    },
}
COMPLETION_RANGES: dict[BackendKind, dict[str, _Range]] = {
    kind: {**RANGES[kind], **_COMPLETION_ONLY[kind]} for kind in BACKEND_KINDS
}
COMPLETION_FLAGS: dict[BackendKind, tuple[str, ...]] = {
    "tgi": ("do_sample", "watermark", "details"),
    "openai": (),
}
# Where a backend's own name differs from Gatehouse's (shown in controls and code).
WIRE_NAMES: dict[BackendKind, dict[str, str]] = {
    "tgi": {},
    "openai": {"max_new_tokens": "max_tokens"},
}
# The parameters bounded by the model's context length besides max_new_tokens.
_CONTEXT_BOUND = ("max_new_tokens", "truncate")


def params_parse(
    data: Mapping[str, Any],
    *,
    backend: BackendKind,
    context_length: int | None = None,
    completion: bool = False,
) -> SamplingParams:
    """Return validated parameters for ``backend`` or raise ParamsError.

    ``completion``: check the raw-completion set (a prompt, not chat messages).
    """
    if backend not in RANGES:
        raise ParamsError(f"Unknown backend kind {backend!r}.")
    ranges = (COMPLETION_RANGES if completion else RANGES)[backend]
    flags = COMPLETION_FLAGS[backend] if completion else ()
    grammar = completion and backend == "tgi"
    unknown = set(data) - set(ranges) - set(flags) - {"stop"} - ({"grammar"} if grammar else set())
    if unknown:
        raise ParamsError(f"Unknown sampling parameter(s): {', '.join(sorted(unknown))}.")
    values: dict[str, Any] = {}
    for name, spec in ranges.items():
        if data.get(name) is not None:
            values[name] = _checked(name, data[name], spec)
    for name in flags:
        if data.get(name) is not None:
            if not isinstance(data[name], bool):
                raise ParamsError(f"{name} must be true or false.")
            values[name] = data[name]
    values["stop"] = _stop_sequences(data.get("stop"))
    if grammar and data.get("grammar") is not None:
        values["grammar"] = _grammar(data["grammar"])
    for name in _CONTEXT_BOUND:
        if context_length and values.get(name, 0) >= context_length:
            raise ParamsError(
                f"{name} must be below the model's context length ({context_length})."
            )
    return SamplingParams(**values)


def _checked(name: str, value: Any, spec: _Range) -> int | float:
    kind, low, low_inclusive, high, high_inclusive = spec
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamsError(f"{name} must be a number.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamsError(f"{name} must be a finite number.")
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ParamsError(f"{name} must be a whole number.")
    # Python compares an int of any length with a float exactly: no conversion before here.
    too_low = low is not None and (value < low or (value == low and not low_inclusive))
    too_high = high is not None and (value > high or (value == high and not high_inclusive))
    if too_low or too_high:
        raise ParamsError(f"{name} must be {_describe(low, low_inclusive, high, high_inclusive)}.")
    if abs(value) > MAX_NUMBER:
        raise ParamsError(f"{name} must be at most {MAX_NUMBER}.")
    return kind(value)


def _describe(low: float | None, low_inc: bool, high: float | None, high_inc: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'at least' if low_inc else 'greater than'} {low:g}")
    if high is not None:
        parts.append(f"{'at most' if high_inc else 'less than'} {high:g}")
    return " and ".join(parts)


def _stop_sequences(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise ParamsError("stop must be a list of non-empty strings.")
    if len(value) > MAX_STOP_SEQUENCES:
        raise ParamsError(f"stop takes at most {MAX_STOP_SEQUENCES} sequences.")
    return tuple(value)


def _grammar(value: Any) -> dict[str, Any]:
    """Return a TGI grammar: a JSON schema (an object, or its text) or a regular expression."""
    if not isinstance(value, dict) or set(value) != {"type", "value"}:
        raise ParamsError('grammar must be {"type": "json" or "regex", "value": …}.')
    kind, body = value["type"], value["value"]
    if kind not in GRAMMAR_TYPES:
        raise ParamsError('grammar type must be "json" or "regex".')
    if kind == "json" and isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise ParamsError(f"grammar: the JSON schema is not valid JSON ({exc}).") from exc
    if kind == "json" and not (isinstance(body, dict) and body):
        raise ParamsError("grammar: a JSON schema must be a non-empty JSON object.")
    if kind == "regex":
        if not isinstance(body, str) or not body:
            raise ParamsError("grammar: a regex must be a non-empty string.")
        try:
            re.compile(body)
        except re.error as exc:
            raise ParamsError(f"grammar: the regex is not valid ({exc}).") from exc
    if len(json.dumps(body)) > MAX_GRAMMAR_CHARS:
        raise ParamsError(f"grammar must be at most {MAX_GRAMMAR_CHARS} characters.")
    return {"type": kind, "value": body}


FLOAT_STEP = 0.01  # the finest step a control offers; an open bound is one step inside


@dataclass(frozen=True)
class Control:
    """What an input for one parameter allows: the backend's range as closed bounds."""

    name: str
    kind: Literal["int", "float"]
    min: float | None
    max: float | None
    step: float


def params_controls(
    backend: BackendKind, *, context_length: int | None = None, completion: bool = False
) -> list[Control]:
    """Return the inputs for ``backend``'s numeric parameters, their bounds taken from RANGES
    (``completion``: from COMPLETION_RANGES).

    An open bound (``top_p < 1``) becomes the closed bound one step inside it,
    so the control never offers a value the backend refuses.
    """
    controls = []
    ranges = (COMPLETION_RANGES if completion else RANGES)[backend]
    for name, (kind, low, low_inclusive, high, high_inclusive) in ranges.items():
        step = 1 if kind is int else FLOAT_STEP
        if name in _CONTEXT_BOUND and context_length:
            high, high_inclusive = context_length, False
        minimum = None if low is None else (low if low_inclusive else round(low + step, 6))
        maximum = None if high is None else (high if high_inclusive else round(high - step, 6))
        controls.append(Control(name, "int" if kind is int else "float", minimum, maximum, step))
    return controls


_TGI_OPTIONAL = (
    "temperature",
    "top_p",
    "top_k",
    "repetition_penalty",
    "seed",
    "typical_p",
    "frequency_penalty",
    "truncate",
    "watermark",
    "grammar",
)


def params_to_tgi(params: SamplingParams) -> dict[str, Any]:
    """Return keyword arguments for ``text_generation.AsyncClient.generate_stream``.

    Sampling is on when asked (``do_sample``) or, when not said, as soon as a
    parameter that only matters when sampling is set.
    """
    sampling = params.temperature is not None or params.top_p is not None
    kwargs: dict[str, Any] = {
        "max_new_tokens": params.max_new_tokens,
        "do_sample": sampling if params.do_sample is None else params.do_sample,
        "stop_sequences": list(params.stop),
    }
    for name in _TGI_OPTIONAL:
        if getattr(params, name) is not None:
            kwargs[name] = getattr(params, name)
    if params.top_n_tokens:
        kwargs["top_n_tokens"] = params.top_n_tokens
    return kwargs


_OPENAI_OPTIONAL = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")


def params_to_openai(params: SamplingParams, *, completion: bool = False) -> dict[str, Any]:
    """Return the sampling fields of an OpenAI-protocol request body (``completion``: of
    ``/v1/completions``, which adds ``logprobs``).

    top_k and repetition_penalty are not part of the OpenAI protocol; vLLM and
    llama.cpp read them from the same body.
    """
    kwargs: dict[str, Any] = {"max_tokens": params.max_new_tokens}
    for name in _OPENAI_OPTIONAL:
        if getattr(params, name) is not None:
            kwargs[name] = getattr(params, name)
    if params.stop:
        kwargs["stop"] = list(params.stop)
    for name in ("top_k", "repetition_penalty"):
        if getattr(params, name) is not None:
            kwargs[name] = getattr(params, name)
    if completion and params.logprobs is not None:
        kwargs["logprobs"] = params.logprobs
    return kwargs
