"""What a user may still ask of the models right now: their limits, what they have used of
each, and when each resets (the account's Limits page and its JSON form)."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from inference import relay
from webapp.accounts.sockets import sockets_open
from webapp.catalog.selectors import model_list_usable

from .limits import (
    NO_LIMIT,
    in_words,
    limits_for,
    running_count,
    started_count,
    tokens_key,
    until_midnight,
    until_minute_ends,
)


@dataclass(frozen=True)
class Use:
    """One limit: how much is used, of how much (None: no limit), and when it resets."""

    used: int
    limit: int | None
    resets_in: int | None = None  # seconds; None: it does not reset on a clock

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    @property
    def reached(self) -> bool:
        return self.limit is not None and self.used >= self.limit

    @property
    def resets_in_words(self) -> str:
        return in_words(self.resets_in) if self.resets_in is not None else ""


@dataclass(frozen=True)
class ModelTokens:
    slug: str
    name: str
    tokens: Use


@dataclass(frozen=True)
class Allowance:
    staff: bool
    running: Use
    this_minute: Use
    models: list[ModelTokens]
    sockets: Use
    at: dt.datetime

    @property
    def midnight(self) -> dt.datetime:
        return dt.datetime.combine(self.at.date() + dt.timedelta(days=1), dt.time(), dt.UTC)

    @property
    def tokens_reset_in_words(self) -> str:
        return in_words(until_midnight(self.at.timestamp()))

    @property
    def minute_ends(self) -> dt.datetime:
        return self.at.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)


def _limit(value: int) -> int | None:
    return None if value >= NO_LIMIT or value == 0 else value


def allowance_get(*, user: Any) -> Allowance:
    """Read the user's allowance: two counts in PostgreSQL, two round trips to Redis."""
    limits = limits_for(user)
    models = model_list_usable(user=user, action="chat")
    now = time.time()
    keys = [tokens_key(user.pk, m.pk, now) for m in models]
    tokens = relay.sync_client().mget(keys) if keys else []
    started = started_count(user=user, now=now)
    running = running_count(user=user)
    midnight = until_midnight(now)
    return Allowance(
        staff=limits.staff,
        running=Use(running, _limit(limits.concurrent)),
        this_minute=Use(started, _limit(limits.per_minute), until_minute_ends(now)),
        models=[
            ModelTokens(
                m.slug,
                m.display_name,
                Use(int(used or 0), _limit(limits.tokens_per_day(m.slug)), midnight),
            )
            for m, used in zip(models, tokens, strict=True)
        ],
        sockets=Use(sockets_open(user.pk), _limit(limits.sockets)),
        at=dt.datetime.fromtimestamp(now, dt.UTC),
    )


def _use(use: Use, resets_at: dt.datetime | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"used": use.used, "limit": use.limit, "left": use.left}
    if resets_at is not None:
        data |= {"resets_at": resets_at.isoformat(), "resets_in": use.resets_in}
    return data


def allowance_as_json(allowance: Allowance) -> dict[str, Any]:
    """The allowance for scripts; a ``limit`` of null is no limit, times are UTC."""
    return {
        "at": allowance.at.isoformat(),
        "staff": allowance.staff,
        "running": _use(allowance.running),
        "this_minute": _use(allowance.this_minute, allowance.minute_ends),
        "tokens_today": {
            "counts": "prompt and generated tokens",
            "models": {
                m.slug: {"name": m.name, **_use(m.tokens, allowance.midnight)}
                for m in allowance.models
            },
        },
        "sockets": _use(allowance.sockets),
    }
