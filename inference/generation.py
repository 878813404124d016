"""Stream one generation from its backend into the relay, inside one event loop.

Tokens are coalesced into chunks (the first token goes out at once, then at
most one chunk per flush interval or per N tokens), so the per-token work is
one list append; Redis and the channel layer see one write per chunk. A token
that arrives once the interval is over goes out at once with those before it.
When the interval ends between two tokens of a steady stream, the chunk waits
for the next one (within one and a half of the stream's last gap, and never
more than an interval): sent a moment earlier, it would show text older by a
whole gap, and the next token would wait a whole interval.

A generation with token details asked for (``SamplingParams.alternatives``)
carries them in its chunks (``tokens``: each token's text, logprob and top
alternatives) and in its outcome, to be saved with it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from . import relay, runtime
from .backends import (
    Backend,
    BackendError,
    BackendTimeout,
    ChatMessage,
    Endpoint,
    Event,
    Finish,
    Rendered,
    Timeouts,
    Token,
    backend_for,
)
from .context import cut
from .params import SamplingParams
from .relay import TokenDetail

Status = Literal["done", "stopped", "failed", "interrupted"]
INTERNAL_ERROR_DETAIL = "Something went wrong while relaying this reply. Regenerate to try again."
# A server's own words may name the model it serves: a blind generation says only this.
BLIND_ERROR_DETAIL = "This model could not answer."
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    first_token: float
    idle: float
    connect: float
    total: float
    heartbeat: float
    flush_interval: float
    flush_tokens: int

    @classmethod
    def from_settings(cls, values: dict[str, Any]) -> Limits:
        return cls(
            first_token=values["FIRST_TOKEN_TIMEOUT"],
            idle=values["IDLE_TIMEOUT"],
            connect=values["CONNECT_TIMEOUT"],
            total=values["MAX_DURATION"],
            heartbeat=values["HEARTBEAT_INTERVAL"],
            flush_interval=values["FLUSH_INTERVAL"],
            flush_tokens=values["FLUSH_TOKENS"],
        )


@dataclass(frozen=True)
class Job:
    generation_id: str
    group: str
    endpoint: Endpoint
    messages: list[ChatMessage]
    params: SamplingParams
    model_id: str = ""  # the catalog's id of the model: whose fair queue it came from
    prompt: str = ""  # a raw prompt to continue, in place of chat messages
    blind: bool = False  # its frames name no model and carry no stats (an arena side)
    # The prompt tokens the model's context leaves room for (None: unknown), and the
    # older turns the web app's estimate left out of ``messages`` already.
    context_budget: int | None = None
    trimmed: int = 0


# What a `done` frame and a saved generation report of how it went (besides the model id).
STAT_FIELDS = (
    "finish_reason",
    "prompt_tokens",
    "generated_tokens",
    "time_to_first_token_ms",
    "tokens_per_second",
)


@dataclass
class Outcome:
    status: Status = "done"
    text: str = ""
    finish_reason: str = ""
    prompt_tokens: int | None = None
    generated_tokens: int | None = None
    time_to_first_token_ms: float | None = None
    tokens_per_second: float | None = None
    model_id: str = ""
    revision: str = ""
    system_fingerprint: str = ""
    rendered_prompt: str = field(default="", repr=False)
    # Older turns left out in all, and the messages sent when the worker left out more
    # than the web app had (None: ``Job.messages`` were sent as they are).
    trimmed_messages: int = 0
    sent_messages: list[ChatMessage] | None = field(default=None, repr=False)
    error_code: str = ""
    error_detail: str = ""
    token_count: int = field(default=0, repr=False)
    tokens: list[TokenDetail] = field(default_factory=list, repr=False)  # when asked for

    def stats(self) -> dict[str, Any]:
        stats = {**{name: getattr(self, name) for name in STAT_FIELDS}, "model_id": self.model_id}
        if self.trimmed_messages:
            stats["trimmed_messages"] = self.trimmed_messages
        return stats

    def overloaded_at_start(self) -> bool:
        """Whether the backend refused to start, too busy (HTTP 429), before any text."""
        return self.error_code == "backend_overloaded" and not self.token_count

    def error(self) -> dict[str, str] | None:
        return {"code": self.error_code, "detail": self.error_detail} if self.error_code else None


class Generation:
    """One generation's stream. With a ``claimed`` gate (an early start: the request goes
    out while the worker's claim runs), nothing is written to the relay until the gate
    says True; with False, what was read is dropped and the stream is cancelled."""

    def __init__(
        self, job: Job, limits: Limits, *, claimed: concurrent.futures.Future[bool] | None = None
    ) -> None:
        self.job = job
        self.limits = limits
        self._claimed = claimed
        self._watchdog: _Watchdog | None = None
        self.publisher = relay.Publisher(job.generation_id, job.group)
        self.outcome = Outcome(trimmed_messages=job.trimmed)
        self._pending: list[str] = []
        self._pending_tokens: list[TokenDetail] = []
        self._details = job.params.alternatives is not None
        self._last_flush = 0.0
        self._newest = 0.0  # when the newest token arrived
        self._gap = 0.0  # the time between the two newest tokens
        self._timer: asyncio.TimerHandle | None = None

    async def run(self) -> Outcome:
        """Stream to the end, a stop, or a failure, and return how it went.

        Whatever fails on the way (the backend, Redis, a bug), the text read
        so far is in the outcome: the token log is never its only copy.
        """
        started = time.monotonic()
        reader = asyncio.create_task(self._read(started))
        runtime.register(self.job.generation_id, reader)
        beating = asyncio.create_task(self._beat())
        try:
            if await _cancel_requested(self.job.generation_id):
                reader.cancel()
            await reader
        except asyncio.CancelledError:
            if not reader.cancelled():
                raise
            if runtime.shutting_down():
                self._fail("interrupted", runtime.SHUTDOWN_DETAIL, status="interrupted")
            else:
                self.outcome.status = "stopped"
                self.outcome.finish_reason = "stopped"
        except BackendError as exc:
            self._fail(exc.code, exc.detail)
        except Exception:
            logger.exception("generation %s failed", self.job.generation_id)
            self._fail("internal_error", INTERNAL_ERROR_DETAIL)
        finally:
            reader.cancel()
            beating.cancel()
            await self._flush()
        self._finish_stats(started)
        return self.outcome

    async def done(self) -> None:
        """Log and announce the end, once the outcome is saved."""
        outcome, error = self.outcome, self.outcome.error()
        if self.job.blind and error:
            error = {"code": error["code"], "detail": BLIND_ERROR_DETAIL}
        await self.publisher.done(
            status=outcome.status,
            stats=None if self.job.blind else outcome.stats(),
            error=error,
            patience=relay.END_PATIENCE,
        )

    def _fail(self, code: str, detail: str, *, status: Status = "failed") -> None:
        self.outcome.status = status
        self.outcome.error_code, self.outcome.error_detail = code, detail

    async def _read(self, started: float) -> None:
        limits = self.limits
        backend = backend_for(self.job.endpoint, timeouts=Timeouts(limits.connect, limits.total))
        events = self._events(backend)
        watchdog = self._watchdog = _Watchdog(limits.first_token)
        try:
            async for event in events:
                watchdog.fed()
                if isinstance(event, Token):
                    if self.outcome.time_to_first_token_ms is None:
                        self.outcome.time_to_first_token_ms = (time.monotonic() - started) * 1000
                        watchdog.expect(limits.idle)
                    await self._add(event)
                elif isinstance(event, Rendered):
                    self._apply_rendered(event)
                elif isinstance(event, Finish):
                    self._apply_finish(event)
        except asyncio.CancelledError:
            if watchdog.bit():
                raise BackendTimeout() from None
            raise
        finally:
            watchdog.stop()
            await events.aclose()  # type: ignore[attr-defined]

    def _events(self, backend: Backend) -> AsyncIterator[Event]:
        if self.job.prompt:
            return backend.complete(self.job.prompt, self.job.params)
        return backend.stream(self.job.messages, self.job.params, budget=self.job.context_budget)

    def _apply_rendered(self, event: Rendered) -> None:
        self.outcome.rendered_prompt = event.text
        if event.left_out:
            self.outcome.trimmed_messages = self.job.trimmed + event.left_out
            self.outcome.sent_messages = cut(self.job.messages, event.left_out)

    def _apply_finish(self, event: Finish) -> None:
        self.outcome.finish_reason = event.reason
        self.outcome.prompt_tokens = event.prompt_tokens
        self.outcome.generated_tokens = event.generated_tokens
        self.outcome.model_id = event.model_id
        self.outcome.revision = event.revision
        self.outcome.system_fingerprint = event.system_fingerprint

    async def _add(self, token: Token) -> None:
        now = time.monotonic()
        self._gap, self._newest = (now - self._newest if self._newest else 0.0), now
        self._pending.append(token.text)
        if self._details:
            self._pending_tokens.append(token_detail(token))
        self.outcome.token_count += 1
        due = self._last_flush + self.limits.flush_interval - now
        if due <= 0 or len(self._pending) >= self.limits.flush_tokens:
            await self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(due, self._interval_over)

    def _interval_over(self, waited: bool = False) -> None:
        """Flush what is pending, unless the stream's pace says its next token is near:
        then wait for it once (a token that comes flushes with it and cancels this)."""
        loop = asyncio.get_running_loop()
        wait = self._newest + min(1.5 * self._gap, self.limits.flush_interval) - time.monotonic()
        if wait > 0 and not waited:
            self._timer = loop.call_later(wait, self._interval_over, True)
            return
        _background(loop, self._flush())

    async def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        if self._claimed is not None and not await self._ours():
            return
        text, self._pending = "".join(self._pending), []
        tokens, self._pending_tokens = self._pending_tokens, []
        self.outcome.tokens.extend(tokens)
        self._last_flush = time.monotonic()
        # Numbered here, before any await: the outcome's text is the numbered chunks, and a
        # shielded coroutine only starts on the loop's next turn. Shielded: a stop must not
        # cut a write in half. A write that fails (Redis away) stays with the publisher,
        # and the next one carries it.
        self.publisher.add_chunk(text, tokens=tokens or None)
        await asyncio.shield(self.publisher.sync())

    async def _ours(self) -> bool:
        """Wait for the claim of an early start; whether the tokens may go out."""
        assert self._claimed is not None
        with self._watchdog.paused() if self._watchdog else contextlib.nullcontext():
            ours = await asyncio.wrap_future(self._claimed)
        if not ours:
            self._pending, self._pending_tokens = [], []
            return False
        self._claimed = None  # once claimed, the check costs nothing per chunk
        return True

    async def _beat(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await relay.heartbeat(self.job.generation_id)
            await asyncio.sleep(self.limits.heartbeat)

    def _finish_stats(self, started: float) -> None:
        outcome = self.outcome
        outcome.text = self.publisher.text()  # every token is in a chunk once flushed
        if outcome.generated_tokens is None and outcome.token_count:
            outcome.generated_tokens = outcome.token_count
        if outcome.time_to_first_token_ms is not None and outcome.generated_tokens:
            streaming = time.monotonic() - started - outcome.time_to_first_token_ms / 1000
            if streaming > 0:
                outcome.tokens_per_second = round(outcome.generated_tokens / streaming, 2)
            outcome.time_to_first_token_ms = round(outcome.time_to_first_token_ms, 1)


LOGPROB_DIGITS = 4


def token_detail(token: Token) -> TokenDetail:
    """Return a token's details as chunk frames carry them."""
    logprob = None if token.logprob is None else round(token.logprob, LOGPROB_DIGITS)
    top: list[relay.Alternative] = [
        {"text": t.text, "logprob": round(t.logprob, LOGPROB_DIGITS)} for t in token.top
    ]
    return {"text": token.text, "logprob": logprob, "top": top}


class _Watchdog:
    """Cancel the task reading a stream when no event came for ``timeout`` seconds.

    Per event it only notes the time (an ``asyncio.timeout`` around each event
    cost a timer armed and cancelled per token, a tenth of a busy worker's loop);
    its one timer, when it fires, looks at that note and sets itself again.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._last = self._loop.time()
        self._expired = False
        self._timer: asyncio.TimerHandle | None = self._loop.call_at(
            self._last + timeout, self._check
        )

    def fed(self) -> None:
        self._last = self._loop.time()

    def expect(self, timeout: float) -> None:
        """From now on, allow ``timeout`` seconds between events."""
        self.timeout = timeout
        self.stop()
        self._timer = self._loop.call_at(self._last + timeout, self._check)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Leave out the time spent inside: a wait that is not the backend's silence."""
        running = self._timer is not None
        self.stop()
        try:
            yield
        finally:
            if running:
                self.fed()
                self.expect(self.timeout)

    def bit(self) -> bool:
        """Whether the cancel being handled is this watchdog's (then it is undone, to be
        raised as a timeout instead)."""
        if self._expired and self._task is not None:
            self._task.uncancel()
        return self._expired

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        deadline = self._last + self.timeout
        if self._loop.time() < deadline:
            self._timer = self._loop.call_at(deadline, self._check)
            return
        self._timer = None
        self._expired = True
        if self._task is not None:
            self._task.cancel()


async def _cancel_requested(generation_id: str) -> bool:
    try:
        return await relay.cancel_requested(generation_id)
    except Exception:  # Redis away: a stop asked meanwhile arrives by the cancel channel
        return False


def _background(loop: asyncio.AbstractEventLoop, coro: Any) -> None:
    task = loop.create_task(coro)
    task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("a background flush failed", exc_info=task.exception())
