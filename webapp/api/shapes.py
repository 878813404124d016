"""The OpenAI objects the API answers with: models, completions and their stream chunks."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from webapp.catalog.models import LanguageModel

OWNER = "gatehouse"


def model_object(model: LanguageModel) -> dict[str, Any]:
    return {
        "id": model.slug,
        "object": "model",
        "created": int(model.created_at.timestamp()),
        "owned_by": OWNER,
        "name": model.display_name,
        "context_length": model.context_length,
    }


def model_list(models: list[LanguageModel]) -> dict[str, Any]:
    return {"object": "list", "data": [model_object(model) for model in models]}


def finish_reason(reason: str | None) -> str:
    """OpenAI's finish reason from the backend's (TGI says ``eos_token``, ``stop_sequence``)."""
    return "length" if reason == "length" else "stop"


def usage(stats: dict[str, Any]) -> dict[str, int]:
    prompt = stats.get("prompt_tokens") or 0
    completion = stats.get("generated_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def logprobs_object(tokens: list[dict[str, Any]], offset: int = 0) -> dict[str, Any]:
    """A completion's ``logprobs`` from the generation's token details, as OpenAI shapes it;
    ``offset``: where the first token starts in the completion's text."""
    offsets = []
    for token in tokens:
        offsets.append(offset)
        offset += len(token["text"])
    return {
        "tokens": [token["text"] for token in tokens],
        "token_logprobs": [token.get("logprob") for token in tokens],
        "top_logprobs": [{alt["text"]: alt["logprob"] for alt in t.get("top", [])} for t in tokens],
        "text_offset": offsets,
    }


@dataclass
class Reply:
    """One API call's reply, built as its generation streams."""

    generation_id: str
    model: str
    chat: bool  # chat.completion, else text_completion
    logprobs: bool = False  # a completion that asked for each token's log probability
    created: int = field(default_factory=lambda: int(time.time()))
    sent: int = 0  # characters of text streamed so far: where the next token starts

    @property
    def id(self) -> str:
        prefix = "chatcmpl" if self.chat else "cmpl"
        return f"{prefix}-{uuid.UUID(self.generation_id).hex}"

    def _head(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def whole(
        self, text: str, done: dict[str, Any], tokens: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The non-streamed answer (``tokens``: the token details, when asked for)."""
        stats = done.get("stats") or {}
        reason = finish_reason(stats.get("finish_reason"))
        if self.chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": reason,
            }
            head = self._head("chat.completion")
        else:
            details = logprobs_object(tokens or []) if self.logprobs else None
            choice = {"index": 0, "text": text, "logprobs": details, "finish_reason": reason}
            head = self._head("text_completion")
        return {**head, "choices": [choice], "usage": usage(stats), "system_fingerprint": None}

    def chunk(
        self,
        text: str | None = None,
        *,
        reason: str | None = None,
        tokens: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A stream chunk: the first (the role, chat only), one of text, or the last."""
        if self.chat:
            delta: dict[str, Any] = {} if reason else {"content": text or ""}
            if text is None and reason is None:
                delta = {"role": "assistant", "content": ""}
            choice: dict[str, Any] = {
                "index": 0,
                "delta": delta,
                "logprobs": None,
                "finish_reason": reason,
            }
            return {**self._head("chat.completion.chunk"), "choices": [choice]}
        details = logprobs_object(tokens or [], self.sent) if self.logprobs and text else None
        self.sent += len(text or "")
        choice = {"index": 0, "text": text or "", "logprobs": details, "finish_reason": reason}
        return {**self._head("text_completion"), "choices": [choice]}

    def usage_chunk(self, stats: dict[str, Any]) -> dict[str, Any]:
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        return {**self._head(kind), "choices": [], "usage": usage(stats)}


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event carrying ``data`` (JSON, or the literal ``[DONE]``)."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


SSE_KEEPALIVE = b": waiting\n\n"  # a comment: clients ignore it, proxies see traffic
