"""Scripts: what a single scripted generation request does.

A script is a JSON object; every field is optional:

    tokens             list[str]  token texts to emit (default: a canned 16-token reply)
    n_tokens           int        emit this many tokens " tok0", " tok1", ... instead
    rate               float      tokens per second (default 200; 0 = as fast as possible)
    delay              float      seconds before the response headers are sent
    first_token_delay  float      seconds between the headers and the first token
    status             int        answer with this HTTP error status and a protocol error body
    error              str        message used in the error body (status / fail_after)
    error_type         str        overrides the TGI ``error_type`` / OpenAI ``error.type``
    raw_body           str        with ``status``: send this text verbatim (text/plain)
    json_body          object     with ``status``: send this JSON object verbatim
    fail_after         int        emit this many tokens, then a mid-stream error event
    hang               bool       send 200 headers, then nothing until the client leaves
    hang_after         int        emit this many tokens, then stall until the client leaves
    drop_after         int        emit this many tokens, then close the connection without
                                  ending the response (as a proxy or a crashed server does)
    finish_reason      str        override the finish reason
    eos_token          str|null   TGI only: text of the special end-of-sequence token that
                                  closes a naturally finished stream (default "<|im_end|>",
                                  null or "" to end on the last content token instead)
    logprobs           list[float] each content token's log probability, in order (default
                                  -0.1 for every token); the alternatives asked for (TGI
                                  ``top_n_tokens``, OpenAI ``logprobs``) share the rest

A request picks its script from a ``[[script:{...}]]`` directive in the prompt, else from
the FIFO queue, else from the default script.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

DEFAULT_RATE = 200.0
DEFAULT_EOS = "<|im_end|>"
DEFAULT_LOGPROB = -0.1
DIRECTIVE_OPEN = "[[script:"
DIRECTIVE_CLOSE = "]]"

# Exactly 16 tokens.
DEFAULT_REPLY = (
    "Hello", " from", " the", " scripted", " server", ".", " This", " reply", " is",
    " deterministic", " and", " streams", " token", " by", " token", ".",
)  # fmt: skip

_UNSET = object()


class ScriptError(ValueError):
    """A script (or a directive) is malformed."""


def _number(name: str, value: Any, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScriptError(f"`{name}` must be a number")
    if value < minimum:
        raise ScriptError(f"`{name}` must be >= {minimum:g}")
    return float(value)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ScriptError(f"`{name}` must be a non-negative integer")
    return value


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ScriptError(f"`{name}` must be a string")
    return value


@dataclass(frozen=True, slots=True)
class Script:
    tokens: tuple[str, ...] | None = None
    n_tokens: int | None = None
    rate: float = DEFAULT_RATE
    delay: float = 0.0
    first_token_delay: float = 0.0
    status: int | None = None
    error: str | None = None
    error_type: str | None = None
    raw_body: str | None = None
    json_body: dict[str, Any] | None = None
    fail_after: int | None = None
    hang: bool = False
    hang_after: int | None = None
    drop_after: int | None = None
    finish_reason: str | None = None
    eos_token: str | None = DEFAULT_EOS
    logprobs: tuple[float, ...] | None = None

    @classmethod
    def from_json(cls, data: Any) -> Script:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ScriptError("a script must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ScriptError(f"unknown script field(s): {', '.join(unknown)}")
        kw: dict[str, Any] = {}
        if data.get("tokens") is not None:
            tokens = data["tokens"]
            if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                raise ScriptError("`tokens` must be a list of strings")
            kw["tokens"] = tuple(tokens)
        if data.get("n_tokens") is not None:
            if "tokens" in kw:
                raise ScriptError("use either `tokens` or `n_tokens`, not both")
            kw["n_tokens"] = _count("n_tokens", data["n_tokens"])
        for name in ("rate", "delay", "first_token_delay"):
            if data.get(name) is not None:
                kw[name] = _number(name, data[name])
        if data.get("status") is not None:
            status = data["status"]
            if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
                raise ScriptError("`status` must be an HTTP error status (400-599)")
            kw["status"] = status
        for name in ("fail_after", "hang_after", "drop_after"):
            if data.get(name) is not None:
                kw[name] = _count(name, data[name])
        if data.get("hang") is not None:
            if not isinstance(data["hang"], bool):
                raise ScriptError("`hang` must be a boolean")
            kw["hang"] = data["hang"]
        for name in ("error", "error_type", "raw_body", "finish_reason"):
            if data.get(name) is not None:
                kw[name] = _string(name, data[name])
        if data.get("json_body") is not None:
            if not isinstance(data["json_body"], dict):
                raise ScriptError("`json_body` must be a JSON object")
            if "raw_body" in kw:
                raise ScriptError("use either `raw_body` or `json_body`, not both")
            kw["json_body"] = data["json_body"]
        if data.get("logprobs") is not None:
            values = data["logprobs"]
            if not isinstance(values, list) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and v <= 0 for v in values
            ):
                raise ScriptError("`logprobs` must be a list of numbers <= 0")
            kw["logprobs"] = tuple(float(v) for v in values)
        if "eos_token" in data:
            eos = data["eos_token"]
            kw["eos_token"] = None if eos is None else (_string("eos_token", eos) or None)
        return cls(**kw)

    def to_json(self) -> dict[str, Any]:
        """The non-default fields, as JSON."""
        default = Script()
        out = {}
        for key, value in asdict(self).items():
            if value != getattr(default, key):
                out[key] = list(value) if isinstance(value, tuple) else value
        return out

    def logprob(self, index: int) -> float:
        """The log probability of content token ``index``."""
        if self.logprobs is not None and index < len(self.logprobs):
            return self.logprobs[index]
        return DEFAULT_LOGPROB

    def reply_tokens(self, limit: int | None) -> tuple[list[str], bool]:
        """The content tokens to generate and whether ``limit`` cut them short."""
        if self.tokens is not None:
            tokens = list(self.tokens)
        elif self.n_tokens is not None:
            tokens = [f" tok{i}" for i in range(self.n_tokens)]
        else:
            tokens = list(DEFAULT_REPLY)
        if limit is not None and len(tokens) >= limit:
            return tokens[:limit], True
        return tokens, False


def apply_stop(tokens: list[str], stop: list[str], *, keep: bool) -> tuple[list[str], bool]:
    """Cut ``tokens`` at the first stop sequence; ``keep`` keeps the stop text (as TGI does)."""
    stop = [s for s in stop if s]
    if not stop:
        return tokens, False
    text = ""
    for i, token in enumerate(tokens):
        before = len(text)
        text += token
        hits = [(text.find(s, max(0, before - len(s) + 1)), s) for s in stop]
        hits = [(pos, s) for pos, s in hits if pos >= 0]
        if not hits:
            continue
        pos, seq = min(hits)
        final = text[: pos + len(seq)] if keep else text[:pos]
        out: list[str] = []
        used = 0
        for piece in tokens[: i + 1]:
            if used + len(piece) <= len(final):
                out.append(piece)
                used += len(piece)
            else:
                if final[used:]:
                    out.append(final[used:])
                break
        return out, True
    return tokens, False


def alternatives(text: str, logprob: float, count: int) -> list[tuple[str, float]]:
    """The chosen token and ``count - 1`` made-up alternatives, most likely first: the k-th
    alternative has half the probability left by the one before it."""
    if count <= 0:
        return []
    rest = max(1.0 - math.exp(logprob), 1e-6)
    made_up = [(f" alt{k}", round(math.log(rest) - k * math.log(2), 4)) for k in range(1, count)]
    return sorted([(text, logprob), *made_up], key=lambda pair: -pair[1])


def find_directive(text: str) -> dict[str, Any] | None:
    """The JSON object of the last ``[[script:{...}]]`` directive in ``text``, if any."""
    pos = text.rfind(DIRECTIVE_OPEN)
    if pos < 0:
        return None
    start = pos + len(DIRECTIVE_OPEN)
    decoder = json.JSONDecoder()
    try:
        while start < len(text) and text[start].isspace():
            start += 1
        value, end = decoder.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise ScriptError(f"invalid script directive: {exc}") from None
    rest = text[end:].lstrip()
    if not rest.startswith(DIRECTIVE_CLOSE):
        raise ScriptError("invalid script directive: missing closing ']]'")
    if not isinstance(value, dict):
        raise ScriptError("invalid script directive: expected a JSON object")
    return value


def directive(script: dict[str, Any] | None = None, **fields_: Any) -> str:
    """Render a script as a prompt directive, e.g. ``directive(n_tokens=3)``."""
    body = dict(script or {}, **fields_)
    return f"{DIRECTIVE_OPEN}{json.dumps(body, separators=(',', ':'))}{DIRECTIVE_CLOSE}"


_CHATML_USER = re.compile(r"<\|im_start\|>user\n(.*?)(?:<\|im_end\|>|\Z)", re.S)


def last_user_text_of_prompt(prompt: str) -> str:
    """The last user turn of a ChatML prompt, or the whole prompt if it is not ChatML."""
    turns = _CHATML_USER.findall(prompt)
    return turns[-1] if turns else prompt


def message_text(content: Any) -> str:
    """Text of an OpenAI message ``content`` (a string or a list of content parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return str(content)


def render_chatml(messages: list[dict[str, Any]]) -> str:
    out = [
        f"<|im_start|>{m.get('role', 'user')}\n{message_text(m.get('content'))}<|im_end|>\n"
        for m in messages
    ]
    out.append("<|im_start|>assistant\n")
    return "".join(out)


_TOKEN_RE = re.compile(r"<\|im_(?:start|end)\|>|\s*(?:\w+|[^\w\s])|\s+")


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """A crude word-piece tokenizer: (text, start, stop) triples."""
    return [(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


def count_tokens(text: str) -> int:
    return sum(1 for _ in _TOKEN_RE.finditer(text))
