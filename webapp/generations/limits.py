"""How much one user may ask of the models: replies running at once, replies started per
minute, tokens per day per model, and chat sockets open at once (GENERATION_LIMITS, with
overrides per group and, for tokens, per model). Checked in generation_create before
anything is saved; going over says when it resets, and nothing is queued. A compare row
(one prompt to 2 to 4 models) is one request: it counts once toward the replies running.

The replies started this minute (a UTC clock minute) are the user's generations saved
since it began, counted in PostgreSQL: a chat send reads the count with the rest of what
it needs, in its one read. Redis holds one counter per user, model and UTC day (tokens),
which the worker adds to when a generation ends.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.db.models import Case, CharField, Count, F, Q, QuerySet, When
from django.db.models.functions import Cast

from inference import relay
from inference.context import estimated_tokens
from webapp.core.errors import ApplicationError

from .models import ACTIVE_STATUSES, Generation, Origin

logger = logging.getLogger(__name__)

NO_LIMIT = 10**6  # staff: more than anyone can use
DAY = 86400


class LimitReached(ApplicationError):
    code = "rate_limited"

    def __init__(self, detail: str, *, code: str, retry_after: int | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after

    def as_dict(self) -> dict[str, Any]:
        fields = super().as_dict()
        if self.retry_after is not None:
            fields["retry_after"] = self.retry_after
        return fields


@dataclass(frozen=True)
class Limits:
    concurrent: int
    per_minute: int
    sockets: int
    staff: bool = False
    # The defaults, then each of the user's groups that names a limit: what sets tokens.
    levels: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)

    def tokens_per_day(self, model_slug: str) -> int:
        """The user's daily token budget on this model; 0: no budget.

        At each level (the defaults, each group) a model's own TOKENS_PER_DAY comes before
        the level's; across levels the most generous wins, and 0 is the most generous.
        """
        if self.staff:
            return 0
        values = []
        for level in self.levels:
            model = level.get("MODELS", {}).get(model_slug, {})
            value = model.get("TOKENS_PER_DAY", level.get("TOKENS_PER_DAY"))
            if value is not None:
                values.append(int(value))
        return 0 if not values or 0 in values else max(values)


def limits_for(user: Any) -> Limits:
    """The user's limits: the defaults, raised by any group of theirs that names its own
    (the most generous wins). Staff have no limit. Read once per user object."""
    cached = getattr(user, "_generation_limits", None)
    if cached is not None:
        return cached
    config = settings.GENERATION_LIMITS
    if user.is_staff:
        limits = Limits(concurrent=NO_LIMIT, per_minute=NO_LIMIT, sockets=NO_LIMIT, staff=True)
    else:
        levels = [config]
        if config.get("GROUPS"):  # only then is a query needed
            names = set(user.groups.values_list("name", flat=True))
            levels += [v for name, v in config["GROUPS"].items() if name in names]

        def most(key: str) -> int:
            return max(v.get(key, config[key]) for v in levels)

        limits = Limits(
            concurrent=most("CONCURRENT"),
            per_minute=most("PER_MINUTE"),
            sockets=most("SOCKETS"),
            levels=tuple(levels),
        )
    user._generation_limits = limits
    return limits


def _request_key() -> Any:
    """What tells one request from another: a generation, except that the columns of a
    compare row share their session's group (one row runs at a time per session)."""
    return Case(
        When(origin=Origin.COMPARE, then=F("channel_group")),
        default=Cast("id", output_field=CharField()),
    )


def running_requests() -> Count:
    """Count active generations as requests: a compare row of 2 to 4 columns counts once."""
    return Count(_request_key(), filter=Q(status__in=ACTIVE_STATUSES), distinct=True)


# A user id no user has, to compile ``running_count``'s query once for every user.
_ANY_USER = uuid.UUID(int=0)


def running_count_sql(user_id: Any) -> tuple[str, list[Any]]:
    """Return ``running_count`` for ``user_id`` as a scalar subquery and its parameters,
    for a statement written as SQL that reads it with other rows (a chat send)."""
    sql, params = _running_query(connection.vendor)
    key = Generation._meta.get_field("user").target_field
    anyone, user = (key.get_db_prep_value(u, connection) for u in (_ANY_USER, user_id))
    return f"COALESCE(({sql}), 0)", [user if p == anyone else p for p in params]


@cache
def _running_query(vendor: str) -> tuple[str, tuple[Any, ...]]:
    mine = Generation.objects.filter(user_id=_ANY_USER, status__in=ACTIVE_STATUSES)
    query = mine.values("user").annotate(count=running_requests()).values("count").query
    return query.sql_with_params()


def running_count(*, user: Any) -> int:
    """The user's requests running now (queued or streaming), as the limit counts them."""
    mine: QuerySet[Generation] = Generation.objects.filter(user=user, status__in=ACTIVE_STATUSES)
    return int(mine.aggregate(count=running_requests())["count"])


def minute_start(now: float) -> dt.datetime:
    """When the UTC clock minute of ``now`` began (the per-minute limit counts from it)."""
    return dt.datetime.fromtimestamp(now // 60 * 60, dt.UTC)


# Counted up to the limit (what the check needs to know), from the index on (user, created).
_STARTED = """
SELECT COUNT(*) FROM (
    SELECT 1 FROM "generations_generation" WHERE "user_id" = %s AND "created_at" >= %s LIMIT %s
) started
"""


def started_count_sql(user_id: Any, now: float, limit: int) -> tuple[str, list[Any]]:
    """Return ``started_count`` as a scalar subquery and its parameters, for a statement
    written as SQL that reads it with other rows (a chat send)."""
    if limit >= NO_LIMIT:
        return "0", []
    user = Generation._meta.get_field("user").target_field.get_db_prep_value(user_id, connection)
    since = Generation._meta.get_field("created_at").get_db_prep_value(
        minute_start(now), connection
    )
    return f"({_STARTED})", [user, since, limit]


def started_count(*, user: Any, now: float, limit: int | None = None) -> int:
    """The generations the user started (saved) since the minute of ``now`` began, of every
    origin and whatever became of them: what the per-minute limit counts. With a ``limit``
    it counts no further than that (0 past no limit)."""
    if limit is not None and limit >= NO_LIMIT:
        return 0
    mine = Generation.objects.filter(user=user, created_at__gte=minute_start(now))
    return (mine[:limit] if limit is not None else mine).count()


def tokens_key(user_id: Any, model_id: Any, now: float) -> str:
    return f"gatehouse:tokens:{user_id}:{model_id}:{time.strftime('%Y%m%d', time.gmtime(now))}"


def until_minute_ends(now: float) -> int:
    return max(1, int((now // 60 + 1) * 60 - now) + 1)


def until_midnight(now: float) -> int:
    """Seconds until the UTC day of ``now`` ends (when daily budgets reset)."""
    return DAY - int(now) % DAY


def in_words(seconds: int) -> str:
    """A wait as a person says it: "5 hours and 12 minutes", "40 seconds"."""
    hours, minutes = seconds // 3600, (seconds % 3600 + 59) // 60
    if minutes == 60:
        hours, minutes = hours + 1, 0
    if not hours and seconds < 60:
        return f"{seconds} second{'s' * (seconds != 1)}"
    parts = [f"{hours} hour{'s' * (hours != 1)}"] if hours else []
    parts += [f"{minutes} minute{'s' * (minutes != 1)}"] if minutes else []
    return " and ".join(parts)


def limits_check(
    *, user: Any, model: Any, running: int | None = None, started: int | None = None
) -> None:
    """Refuse a new generation of ``model`` past the user's limits; ``running`` and
    ``started``, when the caller has already counted the user's active generations and
    those started this minute, save their queries.

    Two sends racing past the last place of a limit may both start: the counts are read,
    not reserved (as for the replies running).
    """
    limits = limits_for(user)
    if running is None:
        running = running_count(user=user)
    if running >= limits.concurrent:
        raise LimitReached(
            f"You already have {running} replies running, the most at once for your "
            "account. Wait for one to finish, or stop one, then send again.",
            code="too_many_running",
        )
    now = time.time()
    budget = limits.tokens_per_day(model.slug)
    used = relay.sync_client().get(tokens_key(user.pk, model.pk, now)) if budget else None
    if budget and int(used or 0) >= budget:
        wait = until_midnight(now)
        raise LimitReached(
            f"You have used {int(used or 0):,} of your {budget:,} tokens for "
            f"{model.display_name} today (prompts and replies). The budget resets at "
            f"midnight UTC, in {in_words(wait)}; other models have budgets of their own.",
            code="daily_tokens",
            retry_after=wait,
        )
    if started is None:
        started = started_count(user=user, now=now, limit=limits.per_minute)
    if started >= limits.per_minute:
        wait = until_minute_ends(now)
        raise LimitReached(
            f"You have started {limits.per_minute} replies this minute, the most for your "
            f"account. Try again in {wait} s.",
            code="rate_limited",
            retry_after=wait,
        )


def tokens_record(
    *, generation_id: str, prompt_tokens: int | None, generated_tokens: int | None
) -> None:
    """Add a finished generation's tokens to its user's count for the model and UTC day.

    Counted: the prompt's tokens as the server reported them (estimated from the saved
    input when it reported none) and the generated ones. A Redis failure loses this
    count, never the generation. A blind generation's tokens wait for its unblinding: the
    count per model would name the model (see generation_unblind).
    """
    fields = ["user_id", "language_model_id", "blind"]
    fields += ["messages"] if prompt_tokens is None else []
    row = Generation.objects.filter(pk=generation_id).values(*fields).first()
    if row is None or row["blind"]:
        return
    if prompt_tokens is None:
        prompt_tokens = sum(map(estimated_tokens, row["messages"] or []))
    tokens = prompt_tokens + (generated_tokens or 0)
    if not tokens:
        return
    now = time.time()
    key = tokens_key(row["user_id"], row["language_model_id"], now)
    try:
        pipe = relay.sync_client().pipeline(transaction=False)
        # Kept a little past its day: the web and worker machines' clocks may differ.
        pipe.incrby(key, tokens)
        pipe.expire(key, until_midnight(now) + 3600)
        pipe.execute()
    except (redis.RedisError, OSError) as exc:
        logger.warning(
            "generation %s: its %d tokens were not counted: %s", generation_id, tokens, exc
        )
