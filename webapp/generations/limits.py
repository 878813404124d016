"""How much one user may ask of the models: replies running at once, and replies started
per minute (GENERATION_LIMITS, with overrides per group). Checked in generation_create,
before anything is saved; going over says when to try again, and nothing is queued."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from inference import relay
from webapp.core.errors import ApplicationError

from .models import ACTIVE_STATUSES, Generation


class LimitReached(ApplicationError):
    code = "rate_limited"

    def __init__(self, detail: str, *, code: str, retry_after: int | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limits:
    concurrent: int
    per_minute: int


def limits_for(user: Any) -> Limits:
    """The user's limits: the defaults, raised by any group of theirs that names its own
    (the most generous wins). Staff have no limit. Read once per user object."""
    cached = getattr(user, "_generation_limits", None)
    if cached is not None:
        return cached
    config = settings.GENERATION_LIMITS
    if user.is_staff:
        limits = Limits(concurrent=10**6, per_minute=10**6)
    else:
        values = [config]
        if config.get("GROUPS"):  # only then is a query needed
            names = set(user.groups.values_list("name", flat=True))
            values += [v for name, v in config["GROUPS"].items() if name in names]
        limits = Limits(
            concurrent=max(v.get("CONCURRENT", config["CONCURRENT"]) for v in values),
            per_minute=max(v.get("PER_MINUTE", config["PER_MINUTE"]) for v in values),
        )
    user._generation_limits = limits
    return limits


def limits_check(*, user: Any, running: int | None = None) -> None:
    """Refuse a new generation past the user's limits; ``running``, when the caller has
    already counted the user's active generations, saves the query."""
    limits = limits_for(user)
    if running is None:
        running = Generation.objects.filter(user=user, status__in=ACTIVE_STATUSES).count()
    if running >= limits.concurrent:
        raise LimitReached(
            f"You already have {running} replies running, the most at once for your "
            "account. Wait for one to finish, or stop one, then send again.",
            code="too_many_running",
        )
    now = time.time()
    window = int(now // 60)
    key = f"gatehouse:rate:{user.pk}:{window}"
    client = relay.sync_client()
    started = client.incr(key)
    if started == 1:  # the first of this minute: the counter goes with the minute
        client.expire(key, 61)
    if started > limits.per_minute:
        client.decr(key)
        wait = max(1, int((window + 1) * 60 - now) + 1)
        raise LimitReached(
            f"You have started {limits.per_minute} replies this minute, the most for your "
            f"account. Try again in {wait} s.",
            code="rate_limited",
            retry_after=wait,
        )
