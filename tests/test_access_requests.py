"""Requesting access: the gate's own form and licence, automatic approval by level or by the
verified email's domain, review (several at once), rejection with a reason, the cool-down,
withdrawal, and bad input that is refused with a reason and changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.utils import timezone

from tests.factories import (
    AccessRequestFactory,
    GateFieldFactory,
    LanguageModelFactory,
    UserFactory,
    gate_factory,
)
from webapp.access.models import AccessRequest, AuditEntry, Grant
from webapp.catalog.policy import model_can_use

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gate(db):
    gate = gate_factory(slug="llama", name="LLaMA", auto=("chat",), cooldown_days=30)
    GateFieldFactory(gate=gate, name="affiliation", label="Affiliation", position=0)
    GateFieldFactory(
        gate=gate, name="use", label="Intended use", kind="long_text", required=False, position=1
    )
    GateFieldFactory(
        gate=gate, name="role", label="Role", kind="select", choices="Student\nResearcher"
    )
    GateFieldFactory(gate=gate, name="country", label="Country", kind="country")
    GateFieldFactory(gate=gate, name="homepage", label="Homepage", kind="url", required=False)
    GateFieldFactory(gate=gate, name="start", label="Start", kind="date", required=False)
    GateFieldFactory(
        gate=gate, name="ethics", label="I have ethics approval", kind="checkbox", required=False
    )
    return gate


@pytest.fixture
def model(gate):
    return LanguageModelFactory(slug="llama-7b", access_policy="gated", gate=gate)


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, email="reviewer@example.org")


def form(gate, **overrides):
    data = {
        "levels": ["chat", "weights"],
        "answer_affiliation": "Example University",
        "answer_use": "Studying bias.",
        "answer_role": "Researcher",
        "answer_country": "FR",
        "answer_homepage": "https://example.edu/~me",
        "answer_start": "2027-01-15",
        "answer_ethics": "on",
        "licence": str(gate.licences.get().pk),
        "accept_licence": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def submit(client, gate, **overrides):
    return client.post(f"/gates/{gate.slug}/request/", form(gate, **overrides))


def test_the_form_asks_the_gates_questions_and_shows_the_licence(client, gate):
    client.force_login(UserFactory())
    page = client.get(f"/gates/{gate.slug}/request/").content.decode()
    for label in ("Affiliation", "Intended use", "Role", "Country", "Homepage", "Start"):
        assert label in page
    assert 'name="answer_country"' in page and ">France</option>" in page
    assert 'type="date"' in page and "Use it for <strong>research</strong> only." in page
    assert 'name="accept_licence"' in page


def test_a_request_gives_the_automatic_level_at_once_and_queues_the_rest(
    client, gate, model, staff
):
    user = UserFactory()
    client.force_login(user)
    response = submit(client, gate)
    assert response.status_code == 302 and response["Location"] == "/access/"

    request = AccessRequest.objects.get(user=user)
    assert request.status == "pending" and request.levels == ["chat", "weights"]
    assert request.approved_levels == ["chat"]
    assert request.answers == {
        "affiliation": "Example University",
        "use": "Studying bias.",
        "role": "Researcher",
        "country": "FR",
        "homepage": "https://example.edu/~me",
        "start": "2027-01-15",
        "ethics": True,
    }
    grant = Grant.objects.get(user=user)
    assert grant.levels == ["chat"] and grant.licence_version == gate.licences.get()
    assert model_can_use(user=user, model=model, action="chat")
    assert not model_can_use(user=user, model=model, action="download")
    actions = list(AuditEntry.objects.filter(gate=gate).values_list("action", flat=True))
    assert actions == [
        "request.submitted",
        "licence.accepted",
        "grant.created",
        "request.partly_approved",
    ]
    assert {m.to[0] for m in mail.outbox} == {user.email, staff.email}
    to_reviewer = next(m for m in mail.outbox if m.to == [staff.email])
    assert user.email in to_reviewer.body and "Example University" in to_reviewer.body
    assert "/review/?gate=llama" in to_reviewer.body


def test_a_verified_address_at_a_listed_domain_is_approved_at_once(client, gate, model):
    gate.approve_domains = "example.edu"
    gate.save()
    user = UserFactory(email="ada@cs.example.edu")
    user.emailaddress_set.create(email=user.email, verified=True, primary=True)
    client.force_login(user)
    submit(client, gate)
    request = AccessRequest.objects.get(user=user)
    assert (request.status, request.auto_decided) == ("approved", True)
    assert Grant.objects.get(user=user).levels == ["chat", "weights"]
    assert model_can_use(user=user, model=model, action="download")
    assert any("was approved" in m.subject for m in mail.outbox)


def test_an_unverified_address_at_a_listed_domain_waits_for_review(client, gate):
    gate.approve_domains = "example.edu"
    gate.save()
    user = UserFactory(email="eve@example.edu")
    user.emailaddress_set.create(email=user.email, verified=False, primary=True)
    client.force_login(user)
    submit(client, gate)
    assert AccessRequest.objects.get(user=user).status == "pending"


def queue_post(client, ids, **fields):
    return client.post("/review/decide", {"request": [str(i) for i in ids], **fields})


def test_a_reviewer_approves_several_requests_at_once_with_levels_and_an_expiry(
    client, gate, model, staff
):
    first, second = AccessRequestFactory.create_batch(2, gate=gate, levels=["chat", "weights"])
    client.force_login(staff)
    queue = client.get("/review/").content.decode()
    assert first.user.email in queue and second.user.email in queue
    day = (timezone.now() + timedelta(days=90)).date()
    response = queue_post(
        client,
        [first.pk, second.pk],
        decision="approve",
        levels=["weights"],
        expires_on=day.isoformat(),
    )
    assert response.status_code == 302
    for request in (first, second):
        request.refresh_from_db()
        assert (request.status, request.reviewer, request.approved_levels) == (
            "approved",
            staff,
            ["weights"],
        )
        grant = Grant.objects.get(user=request.user)
        assert grant.levels == ["weights"] and grant.expires_at.date() == day
        assert model_can_use(user=request.user, model=model, action="download")
    assert sum("was approved" in m.subject for m in mail.outbox) == 2


def test_a_rejection_needs_a_reason_and_the_requester_reads_it(client, gate, staff):
    request = AccessRequestFactory(gate=gate)
    client.force_login(staff)
    queue_post(client, [request.pk], decision="reject", reason="   ")
    request.refresh_from_db()
    assert request.status == "pending"
    queue_post(client, [request.pk], decision="reject", reason="Give an institutional address.")
    request.refresh_from_db()
    assert (request.status, request.reason) == ("rejected", "Give an institutional address.")
    decision = next(m for m in mail.outbox if m.to == [request.user.email])
    assert "Give an institutional address." in decision.body

    client.force_login(request.user)
    mine = client.get("/access/").content.decode()
    assert "Reason: Give an institutional address." in mine


def test_after_a_rejection_one_may_apply_again_once_the_cool_down_has_passed(client, gate):
    user = UserFactory()
    rejected = AccessRequestFactory(
        gate=gate, user=user, status="rejected", reason="No.", decided_at=timezone.now()
    )
    client.force_login(user)
    response = submit(client, gate)
    assert response.status_code == 400 and "You may apply again from" in response.text
    assert AccessRequest.objects.filter(user=user).count() == 1
    AccessRequest.objects.filter(pk=rejected.pk).update(
        decided_at=timezone.now() - timedelta(days=31)
    )
    assert submit(client, gate).status_code == 302
    assert AccessRequest.objects.filter(user=user, status="pending").count() == 1


def test_a_pending_request_can_be_withdrawn_by_its_author_only(client, gate):
    request = AccessRequestFactory(gate=gate)
    client.force_login(UserFactory())
    client.post(f"/access/requests/{request.pk}/withdraw")
    request.refresh_from_db()
    assert request.status == "pending"
    client.force_login(request.user)
    client.post(f"/access/requests/{request.pk}/withdraw")
    request.refresh_from_db()
    assert request.status == "withdrawn"
    assert AuditEntry.objects.filter(action="request.withdrawn", target=str(request.pk)).exists()


def test_a_decision_naming_a_forged_or_decided_request_changes_nothing(client, gate, staff):
    waiting = AccessRequestFactory(gate=gate)
    decided = AccessRequestFactory(gate=gate, status="rejected", reason="No.")
    client.force_login(staff)
    for ids in (
        [waiting.pk, "not-a-uuid"],
        [waiting.pk, "0b6f8c2e-6d7a-4c1e-8a34-3f0f6a1d2c11"],
        [waiting.pk, decided.pk],
    ):
        response = queue_post(client, ids, decision="approve")
        follow = client.get(response["Location"]).content.decode()
        assert "no such request" in follow.lower() or "decided already" in follow
    waiting.refresh_from_db()
    assert waiting.status == "pending" and not Grant.objects.exists()


def test_a_reviewer_group_reviews_its_own_gate_and_no_other(client, gate):
    group = Group.objects.create(name="llama-reviewers")
    gate.reviewer_group = group
    gate.save()
    other = AccessRequestFactory(gate=gate_factory(slug="other"))
    mine = AccessRequestFactory(gate=gate)
    reviewer = UserFactory()
    client.force_login(reviewer)
    assert client.get("/review/").status_code == 404  # not a reviewer yet
    reviewer.groups.add(group)
    queue = client.get("/review/").content.decode()
    assert mine.user.email in queue and other.user.email not in queue
    queue_post(client, [other.pk], decision="reject", reason="Not yours.")
    other.refresh_from_db()
    assert other.status == "pending"
    queue_post(client, [mine.pk], decision="reject", reason="Incomplete.")
    mine.refresh_from_db()
    assert mine.status == "rejected"


def test_the_queue_filters_by_gate_and_level_and_searches_answers(client, gate, staff):
    match = AccessRequestFactory(gate=gate, levels=["weights"], answers={"affiliation": "CERN"})
    AccessRequestFactory(gate=gate, levels=["chat"], answers={"affiliation": "CERN"})
    AccessRequestFactory(gate=gate, levels=["weights"], answers={"affiliation": "Elsewhere"})
    client.force_login(staff)
    page = client.get("/review/", {"gate": "llama", "level": "weights", "q": "cern"})
    rows = page.content.decode().count('data-request="')
    assert rows == 1 and str(match.pk) in page.content.decode()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"answer_affiliation": "x" * 501}, "at most 500 characters"),
        ({"answer_use": "x" * 5001}, "at most 5000 characters"),
        ({"answer_other_gates_field": "sneaky"}, "This form has no field answer_other_gates_field"),
        ({"levels": ["root"]}, "Select a valid choice"),
        ({"levels": None}, "This field is required"),
        ({"accept_licence": None}, "This field is required"),
        ({"licence": "0b6f8c2e-6d7a-4c1e-8a34-3f0f6a1d2c11"}, "The licence changed"),
        ({"answer_role": "Admin"}, "Select a valid choice"),
        ({"answer_country": "XX"}, "Select a valid choice"),
        ({"answer_homepage": "javascript:alert(1)"}, "Enter a valid URL"),
        ({"answer_start": "2027-13-45"}, "Enter a valid date"),
        ({"answer_affiliation": None}, "This field is required"),
    ],
)
def test_bad_input_is_refused_with_the_reason_and_saves_nothing(client, gate, overrides, message):
    client.force_login(UserFactory())
    response = submit(client, gate, **overrides)
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not AccessRequest.objects.exists() and not Grant.objects.exists()
    assert not AuditEntry.objects.exists()


def test_a_level_the_gate_does_not_offer_on_request_is_refused(client, gate):
    gate.levels.filter(level="weights").update(requestable=False)
    client.force_login(UserFactory())
    response = submit(client, gate)
    assert response.status_code == 400 and not AccessRequest.objects.exists()


def test_a_second_request_while_one_waits_is_refused(client, gate):
    user = UserFactory()
    AccessRequestFactory(gate=gate, user=user)
    client.force_login(user)
    response = submit(client, gate)
    assert response.status_code == 400
    assert "waiting for review already" in response.content.decode()
    assert AccessRequest.objects.filter(user=user).count() == 1
