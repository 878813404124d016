"""In-memory state of the scripted server: script queue, default script, request log."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from .scripts import Script

# Outcomes of a logged request.
RUNNING = "running"  # still being answered
HANGING = "hanging"  # stalled on purpose, waiting for the client to leave
OK = "ok"  # finished normally (finish reason sent)
ERROR = "error"  # answered with an HTTP error status
FAILED = "failed"  # a mid-stream error event was sent
DISCONNECTED = "disconnected"  # the client left before the response was finished
DROPPED = "dropped"  # the server closed the connection mid-response on purpose
SERVED = "served"  # a metadata request (info, models, tokenize) was answered

GENERATION = "generation"
META = "meta"


@dataclass(slots=True)
class Record:
    id: int
    path: str
    kind: str
    protocol: str
    body: Any
    started_at: float = field(default_factory=time.time)
    stream: bool = False
    script: dict[str, Any] | None = None
    script_source: str | None = None
    status: int | None = None
    first_token_at: float | None = None
    ended_at: float | None = None
    tokens_sent: int = 0
    disconnected: bool = False
    completed: bool = False
    outcome: str = RUNNING

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "kind": self.kind,
            "protocol": self.protocol,
            "stream": self.stream,
            "body": self.body,
            "script": self.script,
            "script_source": self.script_source,
            "status": self.status,
            "started_at": self.started_at,
            "first_token_at": self.first_token_at,
            "ended_at": self.ended_at,
            "tokens_sent": self.tokens_sent,
            "disconnected": self.disconnected,
            "completed": self.completed,
            "outcome": self.outcome,
        }


class ServerState:
    def __init__(self, *, max_log: int = 20_000, max_concurrent_requests: int = 0) -> None:
        self.queue: deque[Script] = deque()
        self.default: Script | None = None
        self.log: deque[Record] = deque(maxlen=max_log)
        self.max_concurrent_requests = max_concurrent_requests
        self.in_flight = 0
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()

    # -- scripts -------------------------------------------------------------

    def next_script(self) -> tuple[Script, str]:
        if self.queue:
            return self.queue.popleft(), "queue"
        if self.default is not None:
            return self.default, "default"
        return Script(), "builtin"

    def reset(self) -> None:
        self.queue.clear()
        self.default = None
        self.log.clear()
        self.notify()

    # -- request log ---------------------------------------------------------

    def new_record(self, path: str, body: Any, *, kind: str, protocol: str) -> Record:
        record = Record(id=next(self._ids), path=path, kind=kind, protocol=protocol, body=body)
        self.log.append(record)
        self.notify()
        return record

    def finish(self, record: Record, outcome: str, *, status: int | None = None) -> None:
        """Mark ``record`` as ended (first call wins)."""
        if record.ended_at is not None:
            return
        if status is not None:
            record.status = status
        record.outcome = outcome
        record.completed = outcome == OK
        record.disconnected = outcome == DISCONNECTED
        record.ended_at = time.time()
        self.notify()

    def set_outcome(self, record: Record, outcome: str) -> None:
        record.outcome = outcome
        self.notify()

    # -- waiting -------------------------------------------------------------

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(
        self, predicate: Callable[[], list[Record] | None], timeout: float
    ) -> list[Record] | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = predicate()
            if found is not None:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
