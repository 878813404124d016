"""Figures about a gate: the staff report, the public transparency page, the audit export."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import BigIntegerField, Count, Q, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from ..models import (
    AccessRequest,
    AuditEntry,
    AuditOutcome,
    Gate,
    Grant,
    Level,
    RequestStatus,
)

EXPORT_COLUMNS = [
    "id",
    "at",
    "action",
    "outcome",
    "actor_email",
    "subject_email",
    "target",
    "ip",
    "user_agent",
    "detail",
]
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile: the smallest value with ``fraction`` of them at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _decided_by_reviewers(gate: Gate) -> QuerySet[AccessRequest]:
    return AccessRequest.objects.filter(
        gate=gate,
        status__in=[RequestStatus.APPROVED, RequestStatus.REJECTED],
        auto_decided=False,
        decided_at__isnull=False,
    )


def _decision_hours(gate: Gate) -> list[float]:
    """Hours from request to decision, for requests a reviewer decided."""
    rows = _decided_by_reviewers(gate).values_list("created_at", "decided_at")
    return [(decided - created).total_seconds() / 3600 for created, decided in rows]


@dataclass(frozen=True)
class Week:
    start: date
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _week_starts(weeks: int, now: datetime | None) -> list[date]:
    """The Mondays of the last ``weeks`` weeks, this one last."""
    today = timezone.localdate(now or timezone.now())
    first = today - timedelta(days=today.weekday(), weeks=weeks - 1)
    return [first + timedelta(weeks=i) for i in range(weeks)]


def _monday(moment: datetime) -> date:
    day = timezone.localdate(moment)
    return day - timedelta(days=day.weekday())


def requests_by_week(*, gate: Gate, weeks: int = 12, now: datetime | None = None) -> list[Week]:
    """Requests made in each of the last ``weeks`` weeks (Monday first), by their status now."""
    starts = _week_starts(weeks, now)
    buckets: dict[date, Counter[str]] = {start: Counter() for start in starts}
    rows = AccessRequest.objects.filter(gate=gate, created_at__date__gte=starts[0]).values_list(
        "created_at", "status"
    )
    for created, status in rows:
        if (monday := _monday(created)) in buckets:
            buckets[monday][status] += 1
    return [Week(start, dict(counts)) for start, counts in buckets.items()]


@dataclass(frozen=True)
class DecisionWeek:
    start: date
    decided: int
    median_hours: float | None
    p90_hours: float | None


def decision_hours_by_week(
    *, gate: Gate, weeks: int = 12, now: datetime | None = None
) -> list[DecisionWeek]:
    """Median and 90th-percentile hours to a reviewer's decision, by the week it was made."""
    starts = _week_starts(weeks, now)
    buckets: dict[date, list[float]] = {start: [] for start in starts}
    rows = _decided_by_reviewers(gate).filter(decided_at__date__gte=starts[0])
    for created, decided in rows.values_list("created_at", "decided_at"):
        if (monday := _monday(decided)) in buckets:
            buckets[monday].append((decided - created).total_seconds() / 3600)
    return [
        DecisionWeek(start, len(hours), percentile(hours, 0.5), percentile(hours, 0.9))
        for start, hours in buckets.items()
    ]


@dataclass(frozen=True)
class FileDownloads:
    name: str
    downloads: int
    bytes: int | None  # None: no download of it recorded its length


def downloads_per_file(*, gate: Gate) -> list[FileDownloads]:
    """Downloads recorded in the audit log per file name, the most downloaded first."""
    rows = (
        AuditEntry.objects.filter(gate=gate, action="download", outcome=AuditOutcome.OK)
        .annotate(
            name=KeyTextTransform("file", "detail"),
            sent=Cast(KeyTextTransform("bytes", "detail"), BigIntegerField()),
        )
        .values("name")
        .annotate(downloads=Count("id"), total=Sum("sent"))
        .order_by("-downloads", "name")
    )
    return [FileDownloads(row["name"] or "?", row["downloads"], row["total"]) for row in rows]


@dataclass(frozen=True)
class Figures:
    holders: dict[str, int]  # per level
    pending: int
    decided: int
    rejection_rate: float | None
    median_hours: float | None
    p90_hours: float | None


def gate_figures(*, gate: Gate, now: datetime | None = None) -> Figures:
    """Aggregate figures only: no person is named or can be singled out by them."""
    now = now or timezone.now()
    live = Grant.objects.filter(gate=gate, revoked_at=None).filter(
        Q(expires_at=None) | Q(expires_at__gt=now)
    )
    holders = Counter(level for levels in live.values_list("levels", flat=True) for level in levels)
    statuses = Counter(AccessRequest.objects.filter(gate=gate).values_list("status", flat=True))
    decided = statuses[RequestStatus.APPROVED] + statuses[RequestStatus.REJECTED]
    hours = _decision_hours(gate)
    return Figures(
        holders={level: holders[level] for level in Level.values},
        pending=statuses[RequestStatus.PENDING],
        decided=decided,
        rejection_rate=statuses[RequestStatus.REJECTED] / decided if decided else None,
        median_hours=percentile(hours, 0.5),
        p90_hours=percentile(hours, 0.9),
    )


def _row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "at": entry.at.isoformat(),
        "action": entry.action,
        "outcome": entry.outcome,
        "actor_email": entry.actor_email,
        "subject_email": entry.subject_email,
        "target": entry.target,
        "ip": entry.ip or "",
        "user_agent": entry.user_agent,
        "detail": entry.detail,
    }


def _entries(gate: Gate) -> Iterator[AuditEntry]:
    return AuditEntry.objects.filter(gate=gate).order_by("id").iterator(chunk_size=500)


def audit_jsonl(*, gate: Gate) -> Iterator[str]:
    for entry in _entries(gate):
        yield json.dumps(_row(entry), separators=(",", ":")) + "\n"


def _cell(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def audit_csv(*, gate: Gate) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for entry in _entries(gate):
        row = _row(entry)
        writer.writerow([_cell(row[column]) for column in EXPORT_COLUMNS])
        if buffer.tell() > 32 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
