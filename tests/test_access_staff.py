"""What staff see and define: the audit export and report per gate, the public figures,
gates in the admin and in the models YAML file (idempotent, all or nothing)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.factories import (
    AccessRequestFactory,
    GateFactory,
    GrantFactory,
    UserFactory,
    gate_factory,
)
from webapp.access.models import AuditEntry, Gate, GateField, GateLevel, LicenceVersion
from webapp.access.selectors.reports import (
    FileDownloads,
    decision_hours_by_week,
    downloads_per_file,
    percentile,
)
from webapp.access.services.audit import audit_record
from webapp.catalog.models import LanguageModel

pytestmark = pytest.mark.django_db


@pytest.fixture
def gate(db):
    return gate_factory(slug="llama", name="LLaMA")


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True))
    return client


def decided(gate, status, hours, **extra):
    request = AccessRequestFactory(gate=gate, status=status, **extra)
    created = timezone.now() - timedelta(days=2)
    type(request).objects.filter(pk=request.pk).update(
        created_at=created, decided_at=created + timedelta(hours=hours)
    )
    return request


def test_staff_export_a_gates_audit_log_as_csv_and_json_lines(staff_client, gate):
    user = UserFactory(email="ada@example.org")
    audit_record(action="request.submitted", gate=gate, actor=user, subject=user, target="r1")
    audit_record(
        action="grant.revoked", gate=gate, subject=user, detail={"reason": "=HYPERLINK(1)"}
    )
    audit_record(action="request.submitted", gate=GateFactory(slug="other"), actor=user)

    response = staff_client.get("/gates/llama/audit.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="audit-llama.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["action"] for r in rows] == ["request.submitted", "grant.revoked"]
    assert rows[0]["actor_email"] == "ada@example.org" and rows[0]["target"] == "r1"
    assert rows[1]["detail"] == '{"reason":"=HYPERLINK(1)"}'  # JSON, so no cell starts with =

    lines = b"".join(staff_client.get("/gates/llama/audit.jsonl").streaming_content).splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["action"] for e in entries] == ["request.submitted", "grant.revoked"]
    assert entries[1]["detail"] == {"reason": "=HYPERLINK(1)"}


def test_a_cell_that_a_spreadsheet_would_run_is_quoted(staff_client, gate):
    audit_record(action="request.submitted", gate=gate, target="=cmd|' /C calc'!A0")
    body = b"".join(staff_client.get("/gates/llama/audit.csv").streaming_content).decode()
    assert "'=cmd" in body


@pytest.mark.parametrize("url", ["/gates/llama/audit.csv", "/gates/llama/report/"])
def test_only_staff_see_the_export_and_the_report(client, gate, url):
    client.force_login(UserFactory())
    response = client.get(url)
    assert response.status_code == 302 and "login" in response["Location"]


def test_the_report_charts_requests_by_week_and_times_to_decision(staff_client, gate):
    for hours in (1, 2, 3, 4, 100):
        decided(gate, "approved", hours)
    decided(gate, "rejected", 10, reason="No.")
    AccessRequestFactory(gate=gate)
    page = staff_client.get("/gates/llama/report/").content.decode()
    assert page.count('class="bar bar-approved"') >= 1 and 'class="bar bar-pending"' in page
    assert "<script" not in page.split('id="weeks-chart"')[1].split("</svg>")[0]
    assert 'data-figure="median-hours">3.0 h' in page  # of 1, 2, 3, 4, 10 and 100 hours
    assert 'data-figure="p90-hours">100.0 h' in page
    assert 'data-figure="pending">1' in page


def decided_at(gate, decided, hours, status="approved"):
    request = AccessRequestFactory(gate=gate, status=status)
    type(request).objects.filter(pk=request.pk).update(
        created_at=decided - timedelta(hours=hours), decided_at=decided
    )


def test_time_to_decision_is_charted_per_week_as_median_and_90th_percentile(staff_client, gate):
    last_week = timezone.now() - timedelta(days=7)
    for hours in (1, 2, 3, 4, 10):
        decided_at(gate, last_week, hours)
    decided_at(gate, last_week, 50, status="rejected")
    AccessRequestFactory(gate=gate, status="approved", auto_decided=True)  # no reviewer: left out
    decided_at(gate, last_week - timedelta(weeks=20), 500)  # before the chart's twelve weeks

    weeks = decision_hours_by_week(gate=gate)
    assert len(weeks) == 12 and sum(w.decided for w in weeks) == 6
    week = weeks[-2]
    assert (week.decided, week.median_hours, week.p90_hours) == (6, 3.0, 50.0)
    assert weeks[-1].median_hours is None

    page = staff_client.get("/gates/llama/report/").content.decode()
    chart = page.split('id="decisions-chart"')[1].split("</svg>")[0]
    assert chart.count('class="bar bar-median"') == 1 and chart.count('class="bar bar-p90"') == 1
    assert f"week of {week.start:%d %b}: median 3.0 h of 6 decided" in chart
    assert "90th percentile 50.0 h of 6 decided" in chart
    assert "<td>6</td><td>3.0 h</td><td>50.0 h</td>" in page.split('id="decisions-table"')[1]


def test_downloads_are_counted_and_charted_per_file(staff_client, gate):
    user = UserFactory()

    def download(name, **detail):
        audit_record(action="download", gate=gate, subject=user, detail={"file": name, **detail})

    for sent in (1000, 500, None):
        download("model.safetensors", bytes=sent)
    download("config.json")
    download("<script>alert(1)</script>.bin", bytes=7)
    refused = {"file": "config.json", "reason": "expired"}
    audit_record(action="download_refused", outcome="refused", gate=gate, detail=refused)
    audit_record(action="download", gate=GateFactory(slug="other"), detail={"file": "x.bin"})

    assert downloads_per_file(gate=gate) == [
        FileDownloads("model.safetensors", 3, 1500),
        FileDownloads("<script>alert(1)</script>.bin", 1, 7),
        FileDownloads("config.json", 1, None),
    ]
    page = staff_client.get("/gates/llama/report/").content.decode()
    chart = page.split('id="downloads-chart"')[1].split("</svg>")[0]
    assert chart.count('class="bar bar-downloads"') == 3
    assert "<title>model.safetensors: 3 downloads</title>" in chart
    assert "<script" not in page.split('id="downloads-chart"')[1].split("</table>")[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.bin" in chart
    rows = page.split('id="downloads-table"')[1]
    assert '<tr data-file="model.safetensors"><td><code>model.safetensors</code></td>' in rows
    assert '<td data-figure="downloads">3</td><td data-figure="bytes" title="1500 bytes">' in rows


def test_a_report_without_downloads_says_so(staff_client, gate):
    page = staff_client.get("/gates/llama/report/").content.decode()
    assert 'id="no-downloads"' in page and 'id="downloads-chart"' not in page


def test_percentiles_are_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([4, 1, 3, 2], 0.5) == 2
    assert percentile(list(range(1, 11)), 0.9) == 9


def test_the_public_figures_are_aggregates_and_name_nobody(client, gate):
    holder = GrantFactory(gate=gate, levels=["chat", "weights"]).user
    GrantFactory(gate=gate, levels=["chat"])
    GrantFactory(gate=gate, levels=["chat"], revoked_at=timezone.now())
    rejected = decided(gate, "rejected", 5, reason="Secret reason")
    decided(gate, "approved", 1)
    assert client.get("/gates/llama/figures/").status_code == 404  # not published
    gate.transparency_public = True
    gate.save()
    page = client.get("/gates/llama/figures/").content.decode()
    assert 'data-figure="holders-chat">2' in page and 'data-figure="holders-weights">1' in page
    assert 'data-figure="rejection-rate">50%' in page
    for private in (holder.email, rejected.user.email, "Secret reason"):
        assert private not in page


YAML = """
gates:
  - slug: llama
    name: LLaMA research access
    summary: Weights for researchers.
    approve_domains: [example.edu]
    cooldown_days: 14
    grant_days: 180
    renewal: review
    reviewer_group: llama-reviewers
    transparency_public: true
    levels:
      chat: {description: Chat in the browser, auto_approve: true}
      weights: {description: Download the files}
    fields:
      - {name: affiliation, label: Affiliation, kind: text}
      - {name: role, label: Role, kind: select, choices: [Student, Researcher]}
      - {name: country, label: Country, kind: country, required: false}
    licence:
      title: LLaMA licence
      text: Research use only.
models:
  - slug: llama-7b
    backend: tgi
    access_policy: gated
    gate: llama
    endpoints: [http://tgi:8080]
"""


@pytest.fixture
def models_file(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(YAML)
    return path


def test_load_models_defines_gates_and_a_rerun_changes_nothing(models_file):
    call_command("load_models", str(models_file))
    gate = Gate.objects.get(slug="llama")
    assert (gate.name, gate.grant_days, gate.renewal, gate.domains()) == (
        "LLaMA research access",
        180,
        "review",
        ["example.edu"],
    )
    assert gate.reviewer_group.name == "llama-reviewers"
    levels = {lv.level: lv.auto_approve for lv in GateLevel.objects.filter(gate=gate)}
    assert levels == {"chat": True, "weights": False}
    assert list(gate.fields.values_list("name", flat=True)) == ["affiliation", "role", "country"]
    assert gate.fields.get(name="role").choice_list() == ["Student", "Researcher"]
    assert LanguageModel.objects.get(slug="llama-7b").gate == gate
    call_command("load_models", str(models_file))
    assert LicenceVersion.objects.filter(gate=gate).count() == 1
    assert Gate.objects.count() == 1 and GateField.objects.count() == 3

    models_file.write_text(
        YAML.replace("Research use only.", "Research use only, no redistribution.").replace(
            "      - {name: country, label: Country, kind: country, required: false}\n", ""
        )
    )
    call_command("load_models", str(models_file))
    assert list(gate.licences.values_list("version", flat=True)) == [2, 1]
    assert GateField.objects.count() == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("renewal: review", "renewal: sometimes"), "gate llama: renewal: must be one of"),
        (("chat: {", "root: {"), r"gate llama: levels\.root"),
        (("kind: select, choices: [Student, Researcher]", "kind: select"), "select needs"),
        (("kind: text}", "kind: essay}"), r"fields\[0\]\.kind: must be one of"),
        (("approve_domains: [example.edu]", "approve_domains: [not a domain]"), "Not a domain"),
        (("gate: llama", "gate: alpaca"), "llama-7b: gate: no gate 'alpaca'"),
        (("access_policy: gated", "access_policy: public"), "Only a gated model has a gate"),
        (("      text: Research use only.\n", ""), "licence: must have exactly a title and a text"),
    ],
)
def test_a_bad_gate_refuses_the_whole_file_with_the_reason(models_file, change, message):
    models_file.write_text(YAML.replace(*change))
    with pytest.raises(CommandError, match=message):
        call_command("load_models", str(models_file))
    assert not Gate.objects.exists() and not LanguageModel.objects.exists()
    assert not AuditEntry.objects.exists()


def test_the_admin_publishes_a_licence_version_and_keeps_published_ones_read_only(client, gate):
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    url = f"/admin/access/gate/{gate.pk}/change/"
    page = client.get(url).content.decode()
    assert "Use it for **research** only." in page and 'name="licences-0-text"' not in page
    form = {
        "slug": gate.slug,
        "name": gate.name,
        "cooldown_days": 30,
        "grant_days": 365,
        "renewal": "automatic",
        "position": 0,
        "is_open": "on",
    }
    for prefix, rows in (("levels", gate.levels.all()), ("fields", []), ("licences", [1])):
        form |= {f"{prefix}-TOTAL_FORMS": len(rows), f"{prefix}-INITIAL_FORMS": len(rows)}
    for index, level in enumerate(gate.levels.all()):
        form |= {
            f"levels-{index}-id": level.pk,
            f"levels-{index}-gate": gate.pk,
            f"levels-{index}-level": level.level,
            f"levels-{index}-requestable": "on",
        }
    form |= {"licences-0-id": gate.licences.get().pk, "licences-0-gate": gate.pk}
    form |= {"licences-TOTAL_FORMS": 2}
    form |= {"licences-1-gate": gate.pk, "licences-1-title": "v2", "licences-1-text": "New."}
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(gate.licences.values_list("version", "text")) == [
        (2, "New."),
        (1, "Use it for **research** only."),
    ]
    assert AuditEntry.objects.filter(action="licence.published", actor=admin).exists()


def test_the_audit_log_is_read_only_in_the_admin(client, gate):
    entry = audit_record(action="request.submitted", gate=gate)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get("/admin/access/auditentry/").status_code == 200
    page = client.get(f"/admin/access/auditentry/{entry.pk}/change/").content.decode()
    assert "request.submitted" in page and 'type="submit"' not in page.split("<form")[-1]
    client.post(f"/admin/access/auditentry/{entry.pk}/delete/", {"post": "yes"})
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
    assert client.get("/admin/access/auditentry/add/").status_code == 403


def test_every_access_page_renders_without_inline_script(staff_client, gate):
    import re

    gate.transparency_public = True
    gate.save()
    GrantFactory(gate=gate)
    AccessRequestFactory(gate=gate, answers={"affiliation": "<script>alert(1)</script>"})
    for url in [
        "/gates/",
        "/gates/llama/",
        "/gates/llama/request/",
        "/gates/llama/licence/",
        "/gates/llama/figures/",
        "/gates/llama/report/",
        "/access/",
        "/review/",
        "/review/grants/",
    ]:
        response = staff_client.get(url)
        assert response.status_code == 200, url
        inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", response.text)
        assert inline == [], url
