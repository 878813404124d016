"""Sampling parameters, checked against each backend's valid ranges before sending.

A request that the backend would reject (TGI refuses ``temperature=0`` and
``top_p=1.0``, for example) is refused here with a sentence a person can act on,
instead of failing later as an opaque 422.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

BackendKind = Literal["tgi", "openai"]
BACKEND_KINDS: tuple[BackendKind, ...] = ("tgi", "openai")
MAX_STOP_SEQUENCES = 4


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

    def as_dict(self) -> dict[str, Any]:
        """Return the parameters that are set, as saved with each reply."""
        data = asdict(self)
        data["stop"] = list(self.stop)
        return {key: value for key, value in data.items() if value not in (None, [])}


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


def params_parse(
    data: Mapping[str, Any], *, backend: BackendKind, context_length: int | None = None
) -> SamplingParams:
    """Return validated parameters for ``backend`` or raise ParamsError."""
    if backend not in RANGES:
        raise ParamsError(f"Unknown backend kind {backend!r}.")
    unknown = set(data) - set(RANGES[backend]) - {"stop"}
    if unknown:
        raise ParamsError(f"Unknown sampling parameter(s): {', '.join(sorted(unknown))}.")
    values: dict[str, Any] = {}
    for name, spec in RANGES[backend].items():
        if data.get(name) is not None:
            values[name] = _checked(name, data[name], spec)
    values["stop"] = _stop_sequences(data.get("stop"))
    if context_length and values.get("max_new_tokens", 0) >= context_length:
        raise ParamsError(
            f"max_new_tokens must be below the model's context length ({context_length})."
        )
    return SamplingParams(**values)


def _checked(name: str, value: Any, spec: _Range) -> int | float:
    kind, low, low_inclusive, high, high_inclusive = spec
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamsError(f"{name} must be a number.")
    if kind is int and not float(value).is_integer():
        raise ParamsError(f"{name} must be a whole number.")
    if not math.isfinite(value):
        raise ParamsError(f"{name} must be a finite number.")
    too_low = low is not None and (value < low or (value == low and not low_inclusive))
    too_high = high is not None and (value > high or (value == high and not high_inclusive))
    if too_low or too_high:
        raise ParamsError(f"{name} must be {_describe(low, low_inclusive, high, high_inclusive)}.")
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


FLOAT_STEP = 0.01  # the finest step a control offers; an open bound is one step inside


@dataclass(frozen=True)
class Control:
    """What an input for one parameter allows: the backend's range as closed bounds."""

    name: str
    kind: Literal["int", "float"]
    min: float | None
    max: float | None
    step: float


def params_controls(backend: BackendKind, *, context_length: int | None = None) -> list[Control]:
    """Return the inputs for ``backend``'s numeric parameters, their bounds taken from RANGES.

    An open bound (``top_p < 1``) becomes the closed bound one step inside it,
    so the control never offers a value the backend refuses.
    """
    controls = []
    for name, (kind, low, low_inclusive, high, high_inclusive) in RANGES[backend].items():
        step = 1 if kind is int else FLOAT_STEP
        if name == "max_new_tokens" and context_length:
            high, high_inclusive = context_length, False
        minimum = None if low is None else (low if low_inclusive else round(low + step, 6))
        maximum = None if high is None else (high if high_inclusive else round(high - step, 6))
        controls.append(Control(name, "int" if kind is int else "float", minimum, maximum, step))
    return controls


def params_to_tgi(params: SamplingParams) -> dict[str, Any]:
    """Return keyword arguments for ``text_generation.AsyncClient.generate_stream``."""
    kwargs: dict[str, Any] = {
        "max_new_tokens": params.max_new_tokens,
        "do_sample": params.temperature is not None or params.top_p is not None,
        "stop_sequences": list(params.stop),
    }
    for name in ("temperature", "top_p", "top_k", "repetition_penalty", "seed"):
        if getattr(params, name) is not None:
            kwargs[name] = getattr(params, name)
    return kwargs


def params_to_openai(params: SamplingParams) -> dict[str, Any]:
    """Return the sampling fields of an OpenAI-protocol chat completion request body.

    top_k and repetition_penalty are not part of the OpenAI protocol; vLLM and
    llama.cpp read them from the same body.
    """
    kwargs: dict[str, Any] = {"max_tokens": params.max_new_tokens}
    for name in ("temperature", "top_p", "seed"):
        if getattr(params, name) is not None:
            kwargs[name] = getattr(params, name)
    if params.stop:
        kwargs["stop"] = list(params.stop)
    for name in ("top_k", "repetition_penalty"):
        if getattr(params, name) is not None:
            kwargs[name] = getattr(params, name)
    return kwargs
