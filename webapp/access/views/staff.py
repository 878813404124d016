"""Staff's report and audit export per gate, and the public figures a gate may publish."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from ..charts import STATUS_ORDER, decisions_chart, downloads_chart, weeks_chart
from ..selectors.reports import (
    audit_csv,
    audit_jsonl,
    decision_hours_by_week,
    downloads_per_file,
    gate_figures,
    requests_by_week,
)
from .common import gate_or_404


@staff_member_required
def report(request: HttpRequest, slug: str) -> HttpResponse:
    gate = gate_or_404(slug)
    weeks = requests_by_week(gate=gate)
    decision_weeks = decision_hours_by_week(gate=gate)
    downloads = downloads_per_file(gate=gate)
    context = {
        "gate": gate,
        "rows": [(w.start, [w.counts.get(s, 0) for s in STATUS_ORDER]) for w in weeks],
        "chart": weeks_chart(weeks),
        "statuses": STATUS_ORDER,
        "figures": gate_figures(gate=gate),
        "decision_weeks": decision_weeks,
        "decisions_chart": decisions_chart(decision_weeks),
        "downloads": downloads,
        "downloads_chart": downloads_chart(downloads),
    }
    return render(request, "access/report.html", context)


@staff_member_required
def export(request: HttpRequest, slug: str, kind: str) -> StreamingHttpResponse:
    gate = gate_or_404(slug)
    if kind == "csv":
        lines, content_type = audit_csv(gate=gate), "text/csv; charset=utf-8"
    else:
        lines, content_type = audit_jsonl(gate=gate), "application/x-ndjson"
    response = StreamingHttpResponse(lines, content_type=content_type)
    extension = "csv" if kind == "csv" else "jsonl"
    response["Content-Disposition"] = f'attachment; filename="audit-{gate.slug}.{extension}"'
    return response


def figures(request: HttpRequest, slug: str) -> HttpResponse:
    """A gate's public transparency page, when the gate publishes one."""
    gate = gate_or_404(slug)
    if not gate.transparency_public:
        raise Http404("This gate publishes no figures.")
    return render(
        request, "access/figures.html", {"gate": gate, "figures": gate_figures(gate=gate)}
    )
