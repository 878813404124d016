"""Turn what the clients recorded, and what the inference server logged, into figures.

Definitions (all times are wall-clock, one machine, one clock):

- client TTFT: first chunk of the reply on the client minus the moment the client
  wrote its request (the websocket ``send`` frame, or the HTTP request of the baseline).
- server TTFT: the inference server's ``first_token_at - started_at`` for that request
  (``started_at``: the generation request reached it; ``first_token_at``: it wrote the
  first token).
- added TTFT: client TTFT minus server TTFT, split into the *request lag* (send frame
  to the generation request reaching the inference server) and the *return lag* (the
  server writing the first token to the client reading it).
- chunk delay: a chunk's arrival minus the moment the server emitted the newest token
  in it. The server paces token i of a stream at ``first_token_at + i / rate``.
- token delay: the same for every token of a chunk (includes the time a token waits
  to be coalesced with the next ones).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from .clients import Stream

MARKER = re.compile(r"bench:([0-9a-f]{12})")
TOKEN = re.compile(r" tok(\d+)")


def expected_text(tokens: int) -> str:
    return "".join(f" tok{i}" for i in range(tokens))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(values: Sequence[float]) -> dict[str, float | None]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 2)

    return {
        "n": len(values),
        "p50": r(percentile(values, 50)),
        "p90": r(percentile(values, 90)),
        "p99": r(percentile(values, 99)),
        "max": r(max(values)) if values else None,
        "mean": r(sum(values) / len(values)) if values else None,
    }


def records_by_key(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The inference server's generation records, by the benchmark marker in their prompt."""
    found: dict[str, dict[str, Any]] = {}
    for record in records:
        match = MARKER.search(json.dumps(record.get("body")))
        if match:
            found[match.group(1)] = record
    return found


def _pieces_ws(stream: Stream) -> tuple[list[tuple[float, str, int]], dict[str, Any]]:
    """(arrival, text, seq) of every chunk of the reply, and facts about its frames."""
    chunks: list[tuple[float, str, int]] = []
    facts: dict[str, Any] = {"done_status": None, "done_seq": None, "generation": None}
    for arrival, raw in stream.frames:
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "chunk":
            if facts["generation"] is None:
                facts["generation"] = frame["generation"]
            if frame["generation"] == facts["generation"]:
                chunks.append((arrival, frame["text"], frame["seq"]))
        elif kind == "done":
            facts["done_status"] = frame.get("status")
            facts["done_seq"] = frame.get("seq")
            facts["done_at"] = arrival
            facts["generation"] = facts["generation"] or frame.get("generation")
        elif kind == "message" and frame["message"].get("role") == "assistant":
            generation = frame["message"].get("generation") or {}
            facts["generation"] = facts["generation"] or generation.get("id")
    return chunks, facts


def _pieces_direct(stream: Stream, backend: str) -> list[tuple[float, str, int]]:
    chunks: list[tuple[float, str, int]] = []
    for arrival, raw in stream.frames:
        payload = bytes(raw).partition(b":")[2].strip()
        if not payload or payload == b"[DONE]":
            continue
        event = json.loads(payload)
        if backend == "tgi":
            token = event.get("token") or {}
            text = "" if token.get("special") else token.get("text", "")
        else:
            choices = event.get("choices") or []
            text = ((choices[0].get("delta") or {}).get("content") or "") if choices else ""
        if text:
            chunks.append((arrival, text, len(chunks) + 1))
    return chunks


def analyse_stream(
    stream: Stream,
    record: dict[str, Any] | None,
    *,
    kind: str,
    backend: str,
    tokens: int,
    rate: float,
) -> dict[str, Any]:
    """Every figure of one stream; ``kind`` is "gatehouse" or "direct"."""
    out: dict[str, Any] = {"key": stream.key, "error": stream.error, "sent_at": stream.sent_at}
    if kind == "gatehouse":
        chunks, facts = _pieces_ws(stream)
        out["generation"] = facts["generation"]
        out["done_status"] = facts["done_status"]
        seqs = [seq for _, _, seq in chunks]
        seq_ok = seqs == list(range(1, len(seqs) + 1)) and facts["done_seq"] == len(seqs) + 1
        out["last_at"] = facts.get("done_at") or (chunks[-1][0] if chunks else None)
    else:
        chunks = _pieces_direct(stream, backend)
        seq_ok = True
        out["done_status"] = "done" if stream.finished else None
        out["last_at"] = stream.frames[-1][0] if stream.frames else None
    text = "".join(t for _, t, _ in chunks)
    indices = [int(i) for _, t, _ in chunks for i in TOKEN.findall(t)]
    seen = set(indices)
    out["chunks"] = len(chunks)
    out["tokens"] = len(indices)
    out["missing"] = sum(1 for i in range(tokens) if i not in seen)
    out["duplicates"] = len(indices) - len(seen)
    out["exactly_once"] = text == expected_text(tokens) and seq_ok and out["done_status"] == "done"
    out["arrivals"] = [round(a, 6) for a, _, _ in chunks]
    out["chunk_tokens"] = [len(TOKEN.findall(t)) for _, t, _ in chunks]
    if chunks and stream.sent_at is not None:
        out["ttft_ms"] = (chunks[0][0] - stream.sent_at) * 1000
    if record is not None:
        out["server_started_at"] = record["started_at"]
        out["server_first_token_at"] = record["first_token_at"]
        if record.get("first_token_at") and record.get("started_at"):
            out["server_ttft_ms"] = (record["first_token_at"] - record["started_at"]) * 1000
            if stream.sent_at is not None:
                out["request_lag_ms"] = (record["started_at"] - stream.sent_at) * 1000
            if chunks:
                out["return_lag_ms"] = (chunks[0][0] - record["first_token_at"]) * 1000
            if "ttft_ms" in out:
                out["added_ms"] = out["ttft_ms"] - out["server_ttft_ms"]
            first = record["first_token_at"]
            chunk_delays, token_delays, emitted = [], [], []
            for arrival, piece, _ in chunks:
                found = [int(i) for i in TOKEN.findall(piece)]
                if not found:
                    continue
                emitted.append(first + max(found) / rate)
                chunk_delays.append((arrival - emitted[-1]) * 1000)
                token_delays.extend((arrival - (first + i / rate)) * 1000 for i in found)
            out["emitted"] = emitted
            out["chunk_delays_ms"] = [round(d, 2) for d in chunk_delays]
            out["token_delays_ms"] = [round(d, 2) for d in token_delays]
    return out


def _values(streams: list[dict[str, Any]], name: str) -> list[float]:
    return [s[name] for s in streams if s.get(name) is not None]


def _flat(streams: list[dict[str, Any]], name: str) -> list[float]:
    return [v for s in streams for v in s.get(name, ())]


def summarise(streams: list[dict[str, Any]], *, tokens: int, rate: float) -> dict[str, Any]:
    """Percentiles and counts over the streams of one phase."""
    sent = _values(streams, "sent_at")
    lasts = _values(streams, "last_at")
    arrivals = _flat(streams, "arrivals")
    weights = _flat(streams, "chunk_tokens")
    summary: dict[str, Any] = {
        "streams": len(streams),
        "exactly_once": sum(1 for s in streams if s.get("exactly_once")),
        "errors": sorted({s["error"] for s in streams if s.get("error")})[:5],
        "tokens_expected": tokens * len(streams),
        "tokens_received": sum(s.get("tokens", 0) for s in streams),
        "tokens_missing": sum(s.get("missing", 0) for s in streams),
        "tokens_duplicated": sum(s.get("duplicates", 0) for s in streams),
        "chunks": len(arrivals),
    }
    for name in ("ttft_ms", "server_ttft_ms", "added_ms", "request_lag_ms", "return_lag_ms"):
        summary[name] = spread(_values(streams, name))
    summary["chunk_delay_ms"] = spread(_flat(streams, "chunk_delays_ms"))
    summary["token_delay_ms"] = spread(_flat(streams, "token_delays_ms"))
    if sent:
        # Chunks the server emitted once every stream had started: the load without the
        # per-request setup of the ramp.
        ramp_end = max(sent) + 1.0
        summary["chunk_delay_after_ramp_ms"] = spread(
            [
                d
                for s in streams
                for d, e in zip(s.get("chunk_delays_ms", ()), s.get("emitted", ()), strict=True)
                if e >= ramp_end
            ]
        )
    if sent and lasts:
        # Steady state, by the schedule: from the last request to the moment the first
        # stream would have ended had it run on time (every stream is live in between).
        start, end = max(sent), min(sent) + (tokens - 1) / rate if rate else max(lasts)
        summary["window"] = "all streams live"
        if end - start < 1.0:
            start, end = min(sent), max(lasts)
            summary["window"] = "whole phase"
        inside = sum(w for a, w in zip(arrivals, weights, strict=True) if start <= a <= end)
        summary["window_start"], summary["window_end"] = start, end
        summary["relayed_tokens_per_s"] = round(inside / (end - start), 1)
        summary["phase_start"], summary["phase_end"] = min(sent), max(lasts)
    return summary
