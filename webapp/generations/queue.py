"""The fair queue of each model, in PostgreSQL.

A queued generation waits until it is *admitted*: given a slot on one of its
model's healthy endpoints. An endpoint serves ``max_concurrent`` replies at
once (set by staff), else what the server reports (TGI's
``max_concurrent_requests``), else GENERATION_ENDPOINT_CAPACITY (``_places``). Admission
runs whenever a slot may have come free or a generation arrived: after a
create commits, after a generation ends, after a health probe, and on the
reaper's round as a safety net. It takes the model's row lock, so two
processes never hand out the same slot.

Fair order: a user's k-th waiting generation ranks k plus the generations
they have running, so the user with the fewest in flight goes next and a
heavy user's twentieth waits behind everyone's first; among equal ranks the
user served longest ago goes first (round-robin across users), then the
oldest generation. Only the admitted get a Celery task: the
broker never holds more than the endpoints can take.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Max, Q
from django.utils import timezone

from inference import relay, runtime
from webapp.catalog.models import LanguageModel

from .models import ACTIVE_STATUSES, Generation, Status

logger = logging.getLogger(__name__)

QUEUE_TIMEOUT_DETAIL = (
    "The model stayed busy for too long and the reply never started. Send it again later."
)
NO_ENDPOINT_DETAIL = "This model has no server configured right now."


@dataclass(frozen=True)
class _Waiting:
    id: Any
    user_id: Any
    group: str
    not_before: datetime | None

    FIELDS = ("id", "user_id", "channel_group", "not_before")


def queue_admit(*, model_id: Any) -> list[str]:
    """Give free slots of the model's endpoints to its waiting generations, fairly, and
    enqueue them; tell the rest where they stand. Return the admitted ids."""
    from inference.tasks import generate

    with transaction.atomic():
        if not _lock(model_id):
            return []
        waiting = _fair_order(model_id)
        if not waiting:  # the round that admitted the last one has cleared the positions
            return []
        free, _ = _places(model_id)
        if free is None:
            _fail_waiting(waiting, "no_endpoint", NO_ENDPOINT_DETAIL)
            return []
        admitted = _admit(waiting, free)
    for generation_id in admitted:
        generate.delay(generation_id)
    taken = set(admitted)
    _publish_positions(model_id, [w for w in waiting if str(w.id) not in taken])
    return admitted


# Per active endpoint of a model: its capacity fields, health, the admitted generations
# it is serving, and whether any generation of the model waits (the same on every row).
_PLACES = """
SELECT e."id", e."max_concurrent", e."reported_capacity", e."healthy",
       (SELECT COUNT(*) FROM "generations_generation" g
        WHERE g."endpoint_id" = e."id" AND g."admitted_at" IS NOT NULL
          AND g."status" IN ('queued', 'streaming')),
       EXISTS (SELECT 1 FROM "generations_generation" w
               WHERE w."language_model_id" = %s AND w."status" = 'queued'
                 AND w."admitted_at" IS NULL)
FROM "catalog_modelendpoint" e WHERE e."model_id" = %s AND e."is_active"
"""


def queue_place(*, model_id: Any) -> Any | None:
    """Return the endpoint a new generation of the model may start on at once: the least
    busy healthy one with a free slot, when nobody waits; else None (it waits its turn).

    Called in the creating transaction, which then holds the model's row lock until it
    commits: one statement on PostgreSQL (``queue_place_sql``), two elsewhere, where a
    full admission round takes five.
    """
    if connection.vendor == "postgresql":
        sql, params = queue_place_sql(model_id)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {sql}", params)
            return cursor.fetchone()[0]
    _lock(model_id)
    free, anyone_waits = _places(model_id)
    if free is None or anyone_waits:
        return None
    return _least_busy(free)


def queue_place_sql(model_id: Any) -> tuple[str, list[Any]]:
    """Return ``queue_place`` on PostgreSQL as an SQL expression and its parameters, for a
    statement that saves the generation with the endpoint it gives (a chat send).

    It calls the function migration generations 0006 made, which decides as the code
    here does: it takes the model's row lock, then counts the free slots in statements of
    their own, so the count sees every placement the lock waited for.
    """
    pk = LanguageModel._meta.pk.get_db_prep_value(model_id, connection)
    return "gatehouse_place(%s, %s)", [pk, settings.GENERATION["ENDPOINT_CAPACITY"]]


def _lock(model_id: Any) -> bool:
    """Take the model's row lock (it does not block the sends' foreign-key checks);
    return whether the model exists."""
    return LanguageModel.objects.select_for_update(no_key=True).filter(pk=model_id).exists()


def _places(model_id: Any) -> tuple[dict[Any, int] | None, bool]:
    """Return the free slots of each healthy endpoint of the model (None: it has no active
    endpoint), and whether any generation of the model waits."""
    field = Generation._meta.get_field("language_model").target_field
    pk = field.get_db_prep_value(model_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(_PLACES, [pk, pk])
        rows = cursor.fetchall()
    if not rows:
        return None, False
    default = settings.GENERATION["ENDPOINT_CAPACITY"]
    # The rule gatehouse_place follows too (migration generations 0006): change both.
    free = {
        endpoint: (staff_set or reported or default) - busy
        for endpoint, staff_set, reported, healthy, busy, _ in rows
        if healthy
    }
    return free, bool(rows[0][5])


def _least_busy(free: dict[Any, int]) -> Any | None:
    """Return the endpoint with the most free slots, or None if none has one."""
    best = max(free, key=free.__getitem__, default=None)
    return best if best is not None and free[best] > 0 else None


def queue_admit_later(*, model_id: Any) -> None:
    """Run an admission round for the model once the caller's transaction commits."""
    transaction.on_commit(lambda: queue_admit_safely(model_id=model_id))


def queue_admit_safely(*, model_id: Any) -> None:
    """Run an admission round; a failure is logged, never raised."""
    # What called it is saved whatever happens here: a failed round (Redis or the
    # database away) is made good by the next one, at the latest the reaper's.
    try:
        queue_admit(model_id=model_id)
    except Exception as exc:
        logger.warning("admission round for model %s failed: %s", model_id, exc)


def queue_admit_all() -> int:
    """Run an admission round for every model with waiting generations (the reaper's)."""
    waiting = Generation.objects.filter(status=Status.QUEUED, admitted_at__isnull=True)
    models = waiting.values_list("language_model_id", flat=True).distinct()
    return sum(len(queue_admit(model_id=model_id)) for model_id in list(models))


def _fair_order(model_id: Any) -> list[_Waiting]:
    """Return the model's waiting generations in the order they are to start.

    A user's k-th waiting generation ranks k plus what they have running; among
    equal ranks the user served longest ago goes first (round-robin), then the
    oldest generation.
    """
    queued = Generation.objects.filter(
        language_model_id=model_id, status=Status.QUEUED, admitted_at__isnull=True
    ).order_by("created_at")
    waiting = [_Waiting(*row) for row in queued.values_list(*_Waiting.FIELDS)]
    if not waiting:
        return []
    served = _served(model_id, {item.user_id for item in waiting})
    running: Counter[Any] = Counter({user: n for user, (n, _) in served.items()})
    ranked = []
    for age, item in enumerate(waiting):
        running[item.user_id] += 1
        last = served.get(item.user_id, (0, None))[1] or _NEVER
        ranked.append((running[item.user_id], last, age, item))
    return [item for *_, item in sorted(ranked, key=lambda r: r[:3])]


_NEVER = datetime.min.replace(tzinfo=UTC)
SERVED_MEMORY = timedelta(hours=1)  # how far back "served longest ago" looks


def _served(model_id: Any, users: set[Any]) -> dict[Any, tuple[int, datetime | None]]:
    """Return, per user, their admitted generations still running and when they were
    last given a slot (within SERVED_MEMORY)."""
    recent = Q(admitted_at__gt=timezone.now() - SERVED_MEMORY) | Q(status__in=ACTIVE_STATUSES)
    rows = (
        Generation.objects.filter(recent, language_model_id=model_id, user_id__in=users)
        .filter(admitted_at__isnull=False)
        .values("user_id")
        .annotate(
            running=Count("id", filter=Q(status__in=ACTIVE_STATUSES)), last=Max("admitted_at")
        )
        .values_list("user_id", "running", "last")
    )
    return {user: (running, last) for user, running, last in rows}


def _admit(waiting: list[_Waiting], free: dict[Any, int]) -> list[str]:
    """Admit waiting generations in order while slots are free, each to the endpoint with
    the most free slots (the least busy)."""
    now = timezone.now()
    chosen: dict[Any, list[Any]] = {}
    for item in waiting:
        endpoint = _least_busy(free)
        if endpoint is None:
            break
        if item.not_before is not None and item.not_before > now:
            continue  # backing off after a 429: its turn is kept, its start is not yet
        free[endpoint] -= 1
        chosen.setdefault(endpoint, []).append(item.id)
    admitted = []
    for endpoint, ids in chosen.items():
        Generation.objects.filter(pk__in=ids, status=Status.QUEUED).update(
            admitted_at=now, endpoint_id=endpoint, updated_at=now
        )
        admitted += [str(pk) for pk in ids]
    return admitted


def _fail_waiting(waiting: list[_Waiting], code: str, detail: str) -> None:
    now = timezone.now()
    Generation.objects.filter(pk__in=[w.id for w in waiting], status=Status.QUEUED).update(
        status=Status.FAILED, error_code=code, error_detail=detail, finished_at=now, updated_at=now
    )
    error = {"code": code, "detail": detail}
    for item in waiting:
        runtime.submit(
            relay.publish_end(str(item.id), item.group, after_seq=0, status="failed", error=error),
            what="announcing a failed generation",
        )


def _publish_positions(model_id: Any, waiting: list[_Waiting]) -> None:
    positions = [(str(w.id), w.group, n) for n, w in enumerate(waiting, start=1)]
    runtime.submit(
        relay.queue_positions_publish(str(model_id), positions), what="publishing queue positions"
    )


def queue_retry(*, generation_id: str, model_id: Any) -> float | None:
    """Put a generation the backend refused as overloaded (429) back in its queue, to
    start again after a backoff; return the backoff, or None when its attempts are spent."""
    limits = settings.GENERATION
    generation = Generation.objects.filter(pk=generation_id).only("attempts").first()
    if generation is None or generation.attempts + 1 >= limits["RETRY_ATTEMPTS"]:
        return None
    base = limits["RETRY_BACKOFF"] * 2**generation.attempts
    backoff = min(base, limits["RETRY_BACKOFF_MAX"]) * random.uniform(0.8, 1.2)  # noqa: S311
    now = timezone.now()
    Generation.objects.filter(pk=generation_id, status=Status.STREAMING).update(
        status=Status.QUEUED,
        admitted_at=None,
        endpoint=None,
        started_at=None,
        attempts=F("attempts") + 1,
        not_before=now + timedelta(seconds=backoff),
        updated_at=now,
    )
    return backoff


def queue_expire(*, now: datetime) -> list[tuple[str, str]]:
    """Fail the generations that waited past GENERATION_QUEUE_TIMEOUT; return (id, group)."""
    cutoff = now - timedelta(seconds=settings.GENERATION["QUEUE_TIMEOUT"])
    stale = Generation.objects.filter(
        status=Status.QUEUED, admitted_at__isnull=True, created_at__lt=cutoff
    )
    expired = list(stale.values_list("id", "channel_group"))
    Generation.objects.filter(pk__in=[pk for pk, _ in expired], status=Status.QUEUED).update(
        status=Status.FAILED,
        error_code="queue_timeout",
        error_detail=QUEUE_TIMEOUT_DETAIL,
        finished_at=now,
        updated_at=now,
    )
    return [(str(pk), group) for pk, group in expired]
