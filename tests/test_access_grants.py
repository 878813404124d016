"""Grants change at once everywhere: revocation with a reason, a new licence version that
holders accept again, expiry with a reminder and one-step renewal, and reviewers' digests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from inference import relay
from tests.factories import (
    AccessRequestFactory,
    GrantFactory,
    LanguageModelFactory,
    UserFactory,
    gate_factory,
)
from webapp.access.models import AccessRequest, AuditEntry, Grant, ReviewerSettings
from webapp.access.services.grants import (
    grants_expire,
    grants_notify_expiring,
    licence_publish,
)
from webapp.access.services.reviewers import reviewers_send_digests
from webapp.catalog.policy import access_refusal, model_can_use

pytestmark = pytest.mark.django_db(transaction=True)


def epoch(user) -> int:
    return int(relay.sync_client().get(f"gatehouse:user:{user.pk}:epoch") or 0)


@pytest.fixture
def gate(db):
    return gate_factory(slug="llama", name="LLaMA", grant_days=365)


@pytest.fixture
def model(gate):
    return LanguageModelFactory(access_policy="gated", gate=gate, display_name="LLaMA 7B")


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True)


def test_a_revocation_needs_a_reason_ends_access_at_once_and_tells_the_holder(
    client, gate, model, staff
):
    grant = GrantFactory(gate=gate)
    holder = grant.user
    before = epoch(holder)
    client.force_login(staff)
    holders = client.get("/review/grants/").content.decode()
    assert holder.email in holders
    client.post(f"/review/grants/{grant.pk}/revoke", {"reason": " "})
    assert model_can_use(user=holder, model=model)

    client.post(f"/review/grants/{grant.pk}/revoke", {"reason": "Shared the weights."})
    grant.refresh_from_db()
    assert grant.revoked_at and grant.revoked_by == staff
    assert access_refusal(user=holder, model_or_gate=model) == (
        "Your access to LLaMA was revoked: Shared the weights."
    )
    assert epoch(holder) == before + 1  # the holder's open sockets close
    assert [m.to for m in mail.outbox] == [[holder.email]]
    assert "Shared the weights." in mail.outbox[0].body
    entry = AuditEntry.objects.get(action="grant.revoked")
    assert (entry.actor, entry.subject, entry.detail["reason"]) == (
        staff,
        holder,
        "Shared the weights.",
    )
    assert entry.ip == "127.0.0.1"


def test_revoking_a_forged_or_revoked_grant_changes_nothing(client, gate, staff):
    grant = GrantFactory(gate=gate, revoked_at=timezone.now(), revoke_reason="Earlier.")
    client.force_login(staff)
    for grant_id in (grant.pk, "0b6f8c2e-6d7a-4c1e-8a34-3f0f6a1d2c11"):
        response = client.post(f"/review/grants/{grant_id}/revoke", {"reason": "Again."})
        assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.revoke_reason == "Earlier."
    assert not AuditEntry.objects.exists()


def test_a_new_licence_version_asks_every_holder_to_accept_it_again(client, gate, model):
    grant = GrantFactory(gate=gate)
    holder = grant.user
    before = epoch(holder)
    licence_publish(gate=gate, title="Research licence", text="New **terms**.")
    assert epoch(holder) == before + 1
    assert "licence of LLaMA has changed" in access_refusal(user=holder, model_or_gate=model)
    assert mail.outbox[0].to == [holder.email] and "/gates/llama/licence/" in mail.outbox[0].body

    client.force_login(holder)
    gate_page = client.get("/gates/llama/").content.decode()
    assert 'id="licence-outdated"' in gate_page
    page = client.get("/gates/llama/licence/").content.decode()
    assert "New <strong>terms</strong>." in page
    current = gate.licences.order_by("-version").first()
    old = gate.licences.get(version=1)
    client.post("/gates/llama/licence/", {"licence": str(old.pk), "accept": "on"})
    assert not model_can_use(user=holder, model=model)  # an old version is not accepted
    client.post("/gates/llama/licence/", {"licence": str(current.pk)})
    assert not model_can_use(user=holder, model=model)  # the box was not ticked
    client.post("/gates/llama/licence/", {"licence": str(current.pk), "accept": "on"})
    assert model_can_use(user=holder, model=model)
    grant.refresh_from_db()
    assert grant.licence_version == current
    assert AuditEntry.objects.filter(action="licence.accepted", detail__version=2).count() == 1


def test_an_expired_grant_is_recorded_once_and_its_sockets_are_told(gate, model):
    grant = GrantFactory(gate=gate, expires_at=timezone.now() - timedelta(seconds=1))
    before = epoch(grant.user)
    assert not model_can_use(user=grant.user, model=model)  # at once, before any sweep
    assert grants_expire() == 1
    assert grants_expire() == 0  # safe to run twice
    assert epoch(grant.user) == before + 1
    assert AuditEntry.objects.filter(action="grant.expired", target=str(grant.pk)).count() == 1


def test_holders_are_reminded_once_before_expiry_and_renew_in_one_step(client, gate, model):
    soon = timezone.now() + timedelta(days=3)
    grant = GrantFactory(gate=gate, expires_at=soon)
    GrantFactory(gate=gate, expires_at=timezone.now() + timedelta(days=200))  # not yet
    assert grants_notify_expiring() == 1
    assert grants_notify_expiring() == 0
    assert mail.outbox[0].to == [grant.user.email]
    assert "http://testserver/gates/llama/" in mail.outbox[0].body

    client.force_login(grant.user)
    client.post("/gates/llama/renew")
    grant.refresh_from_db()
    assert grant.expires_at > timezone.now() + timedelta(days=360)
    assert grant.expiry_notified_at is None  # reminded again before the next end
    assert AuditEntry.objects.filter(action="grant.renewed").exists()


def test_a_renewal_goes_to_review_when_the_gate_says_so_and_access_runs_meanwhile(
    client, gate, model, staff
):
    gate.renewal = "review"
    gate.save()
    end = timezone.now() + timedelta(days=3)
    grant = GrantFactory(gate=gate, levels=["chat", "weights"], expires_at=end)
    client.force_login(grant.user)
    client.post("/gates/llama/renew")
    renewal = AccessRequest.objects.get(user=grant.user)
    assert (renewal.kind, renewal.status, renewal.levels) == ("renewal", "pending", grant.levels)
    assert model_can_use(user=grant.user, model=model)
    client.post("/gates/llama/renew")
    assert AccessRequest.objects.filter(user=grant.user).count() == 1  # once

    client.force_login(staff)
    client.post("/review/decide", {"request": [str(renewal.pk)], "decision": "approve"})
    grant.refresh_from_db()
    assert grant.expires_at > end + timedelta(days=300)


def test_reviewers_choose_between_mail_at_once_and_a_daily_digest(client, gate):
    daily = UserFactory(is_staff=True, email="daily@example.org")
    at_once = UserFactory(is_staff=True, email="now@example.org")
    client.force_login(daily)
    client.post("/review/notify", {"notify": "daily"})
    client.post("/review/notify", {"notify": "hourly"})  # not a choice: kept as it was
    assert ReviewerSettings.objects.get(user=daily).notify == "daily"

    requester = UserFactory()
    client.force_login(requester)
    client.post(
        "/gates/llama/request/",
        {"levels": ["weights"], "licence": str(gate.licences.get().pk), "accept_licence": "on"},
    )
    told = sorted(m.to[0] for m in mail.outbox if "New access request" in m.subject)
    assert told == [at_once.email]

    AccessRequestFactory(gate=gate)
    assert reviewers_send_digests() == 1
    assert reviewers_send_digests() == 0  # once a day
    digest = next(m for m in mail.outbox if "waiting for review" in m.subject)
    assert digest.to == [daily.email] and requester.email in digest.body
    assert digest.subject.startswith("[Gatehouse] 2 access requests")


def test_the_periodic_jobs_are_scheduled_and_expiry_runs_in_beat():
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["access-expire-grants"]["options"] == {"in_beat": True}
    assert schedule["access-expire-grants"]["task"] == "access.expire_grants"
    assert schedule["access-notify-expiring"]["task"] == "access.notify_expiring"
    assert schedule["access-send-digests"]["task"] == "access.send_digests"
    from webapp.celery import app

    app.loader.import_default_modules()
    assert {"access.expire_grants", "access.notify_expiring", "access.send_digests"} <= set(
        app.tasks
    )


def test_a_grant_the_holder_ended_in_the_admin_is_not_changeable_there(client, gate):
    grant = GrantFactory(gate=gate)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(f"/admin/access/grant/{grant.pk}/change/")
    assert page.status_code == 200 and 'name="levels"' not in page.content.decode()
    client.post(f"/admin/access/grant/{grant.pk}/delete/", {"post": "yes"})
    assert Grant.objects.filter(pk=grant.pk).exists()


def test_a_private_models_group_change_tells_its_members_sockets():
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="team")
    member, outsider = UserFactory(), UserFactory()
    member.groups.add(group)
    model = LanguageModelFactory(access_policy="private")
    before, other = epoch(member), epoch(outsider)
    model.allowed_groups.add(group)
    assert epoch(member) == before + 1 and model_can_use(user=member, model=model)
    model.allowed_groups.clear()
    assert epoch(member) == before + 2 and not model_can_use(user=member, model=model)
    assert epoch(outsider) == other
