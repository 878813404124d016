"""The fair queue per model: past an endpoint's capacity generations wait, served
round-robin across users; a backend 429 puts a generation back with a backoff;
replicas share the load and one that fails its health check is skipped."""

from __future__ import annotations

import time

import pytest
from channels.db import database_sync_to_async as sync
from django.db import transaction

from tests.concurrency import all_at_once
from tests.factories import (
    ConversationFactory,
    LanguageModelFactory,
    ModelEndpointFactory,
    UserFactory,
)
from tests.inference_server.harness import ScriptedServer
from tests.ws import chunk_text, connect
from webapp.catalog.endpoints import endpoint_probe_all
from webapp.catalog.models import ModelEndpoint
from webapp.chat.services import message_send
from webapp.generations.models import Generation, Origin, Status
from webapp.generations.services import generation_create

pytestmark = pytest.mark.django_db(transaction=True)

TOKENS = [f" t{i}" for i in range(8)]


@pytest.fixture(autouse=True)
def _no_user_limits(settings):
    settings.GENERATION_LIMITS = {
        **settings.GENERATION_LIMITS,
        "CONCURRENT": 100,
        "PER_MINUTE": 100,
    }


def create(user, model, content="go") -> str:
    with transaction.atomic():  # admitted once this commits, as a send's would be
        generation = generation_create(
            user=user,
            model=model,
            origin=Origin.API,
            messages=[{"role": "user", "content": content}],
        )
    return str(generation.pk)


def finish(generation_id: str) -> None:
    Generation.objects.filter(pk=generation_id).update(status=Status.DONE)


def one_slot_model(url: str, **fields):
    model = LanguageModelFactory(default_params={"max_new_tokens": 8}, **fields)
    ModelEndpointFactory(model=model, url=url, max_concurrent=1)
    return model


def wait_until_final(ids: list[str], timeout: float = 30.0) -> list[Generation]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {str(g.pk): g for g in Generation.objects.filter(pk__in=ids)}
        if all(not g.is_active for g in found.values()):
            return [found[i] for i in ids]
        time.sleep(0.1)
    raise AssertionError("generations still running: " + ", ".join(ids))


def test_a_light_user_goes_before_a_heavy_users_backlog(inference, admit):
    model = one_slot_model(inference.url)
    heavy, light = UserFactory(), UserFactory()
    backlog = [create(heavy, model) for _ in range(20)]
    late = create(light, model)

    started = []
    for _ in range(4):  # one slot: each round admits one, once the previous one ended
        (admitted,) = admit(model)
        started.append(admitted)
        finish(admitted)
    assert started == [backlog[0], late, backlog[1], backlog[2]]
    waiting = Generation.objects.filter(status=Status.QUEUED, admitted_at__isnull=True)
    assert waiting.count() == 17


def test_with_a_real_worker_b_starts_before_as_third(worker, inference):
    # A's first reply takes 3 s, so that A's backlog and B's reply all wait behind it.
    inference.push({"tokens": TOKENS, "rate": 8 / 3})
    inference.set_default({"tokens": TOKENS, "rate": 80})
    model = one_slot_model(inference.url)
    heavy, light = UserFactory(), UserFactory()
    backlog = [create(heavy, model, f"heavy {n}") for n in range(20)]
    late = create(light, model, "light")
    assert Generation.objects.get(pk=backlog[0]).is_active, "the machine is too slow for this test"
    ended = wait_until_final([*backlog, late], timeout=60)
    assert {g.status for g in ended} == {Status.DONE}
    assert [g.attempts for g in ended] == [0] * 21  # each started once: started_at is its start
    first_three = [g.started_at for g in ended[:3]]
    assert first_three[0] < ended[-1].started_at < first_three[2]
    assert all(g.text == "".join(TOKENS) for g in ended)


async def test_a_waiting_reply_is_told_its_position_live_then_streams(worker, inference):
    inference.set_default({"tokens": TOKENS, "rate": 20})  # 0.4 s each
    user = await sync(UserFactory)()
    model = await sync(one_slot_model)(inference.url)
    ids = [await sync(create)(user, model, f"question {n}") for n in range(3)]
    socket = await connect(user)
    await socket.send({"type": "subscribe", "generation": ids[2], "after_seq": 0})
    frames = await socket.receive_until("done", generation=ids[2], timeout=20)
    positions = [f["position"] for f in frames if f["type"] == "queue"]
    assert positions[-1] == 1 and positions == sorted(positions, reverse=True)
    assert 2 in positions  # it was told it stood second, then first
    first_chunk = next(i for i, f in enumerate(frames) if f["type"] == "chunk")
    assert all(f["type"] != "queue" for f in frames[first_chunk:])
    assert chunk_text(frames) == "".join(TOKENS)
    await socket.close()


def test_a_429_puts_the_reply_back_in_the_queue_and_it_streams_after_a_backoff(worker, inference):
    model = one_slot_model(inference.url)
    inference.push({"status": 429}, {"tokens": TOKENS, "rate": 100})
    (saved,) = wait_until_final([create(UserFactory(), model)])
    assert (saved.status, saved.text, saved.attempts) == (Status.DONE, "".join(TOKENS), 1)
    assert not saved.error_code
    assert len(inference.generations()) == 2  # asked twice, not failed the first time


def test_the_429_backoff_is_bounded_then_the_reply_fails_with_the_reason(worker, inference):
    model = one_slot_model(inference.url)
    inference.push(*[{"status": 429}] * 3)  # the test settings allow three attempts
    (saved,) = wait_until_final([create(UserFactory(), model)])
    assert (saved.status, saved.error_code) == (Status.FAILED, "backend_overloaded")
    assert "busy" in saved.error_detail
    assert saved.attempts == 2


def test_replies_go_to_the_least_busy_replica_and_a_failing_one_is_skipped(inference, admit):
    with ScriptedServer() as second:
        model = LanguageModelFactory(default_params={"max_new_tokens": 8})
        one = ModelEndpointFactory(model=model, url=inference.url, max_concurrent=2)
        two = ModelEndpointFactory(model=model, url=second.url, max_concurrent=2)
        ids = [create(UserFactory(), model) for _ in range(2)]
        admit(model)
        served = Generation.objects.filter(pk__in=ids).values_list("endpoint_id", flat=True)
        assert sorted(served) == sorted([one.pk, two.pk])  # one each, not both on the first
        for generation_id in ids:
            finish(generation_id)

        second.port = int(second.url.rsplit(":", 1)[1])  # to come back on the same address
        second.kill()
        assert endpoint_probe_all() == set()
        assert not ModelEndpoint.objects.get(pk=two.pk).healthy
        ids = [create(UserFactory(), model) for _ in range(3)]
        admit(model)
        generations = Generation.objects.filter(pk__in=ids)
        assert sorted(generations.values_list("endpoint_id", flat=True), key=str) == sorted(
            [one.pk, one.pk, None], key=str
        )  # the first holds two; the third waits rather than go to the dead one

        waiting = str(generations.get(endpoint__isnull=True).pk)
        second.start()
        assert endpoint_probe_all() == {model.pk}  # back: its model may take more
        assert admit(model) == [waiting]
        assert Generation.objects.filter(endpoint_id=two.pk, pk__in=ids).count() == 1


def test_a_tgi_endpoint_takes_as_many_at_once_as_its_info_reports(admit):
    with ScriptedServer(max_concurrent_requests=3) as server:
        model = LanguageModelFactory(backend="tgi", default_params={"max_new_tokens": 8})
        endpoint = ModelEndpointFactory(model=model, url=server.url)
        endpoint_probe_all()
        assert ModelEndpoint.objects.get(pk=endpoint.pk).reported_capacity == 3
        for _ in range(4):
            create(UserFactory(), model)
        assert len(admit(model)) == 3


def test_a_model_without_a_server_fails_waiting_replies_at_once(admit):
    model = LanguageModelFactory(default_params={"max_new_tokens": 8})
    generation_id = create(UserFactory(), model)
    assert admit(model) == []
    saved = Generation.objects.get(pk=generation_id)
    assert (saved.status, saved.error_code) == (Status.FAILED, "no_endpoint")


def test_the_queue_outlives_its_worker(celery_worker_process, inference):
    """Generations waiting in PostgreSQL start once a worker is back, in their order."""
    inference.set_default({"tokens": TOKENS, "rate": 100})
    celery_worker_process.stop()
    try:
        model = one_slot_model(inference.url)
        user = UserFactory()
        ids = [create(user, model, f"question {n}") for n in range(3)]
        assert Generation.objects.filter(admitted_at__isnull=True).count() == 2
    finally:
        celery_worker_process.start()
    ended = wait_until_final(ids)
    assert [g.status for g in ended] == [Status.DONE] * 3
    assert ended[0].started_at < ended[1].started_at < ended[2].started_at


def test_a_reply_that_waited_past_the_queue_timeout_fails_and_the_next_is_admitted(
    inference, admit, settings
):
    from datetime import timedelta

    from django.utils import timezone

    from inference.tasks import reap_generations

    model = one_slot_model(inference.url)
    user = UserFactory()
    busy, stale, fresh = (create(user, model, f"q{n}") for n in range(3))
    admit(model)
    Generation.objects.filter(pk=stale).update(created_at=timezone.now() - timedelta(hours=1))
    settings.GENERATION = {**settings.GENERATION, "QUEUE_TIMEOUT": 600}
    finish(busy)
    reap_generations()
    saved = Generation.objects.get(pk=stale)
    assert (saved.status, saved.error_code) == (Status.FAILED, "queue_timeout")
    assert "too long" in saved.error_detail
    assert Generation.objects.get(pk=fresh).admitted_at is not None  # the reaper's round


def test_sends_racing_for_a_models_last_slot_start_exactly_one_reply(inference, monkeypatch):
    """Six sends released at once into a model with one free slot start one reply: each
    takes the model's row lock before it counts the free slots."""
    from inference.tasks import generate

    monkeypatch.setattr(generate, "apply_async", lambda *args, **options: None)
    model = one_slot_model(inference.url)
    conversations = [ConversationFactory(user=UserFactory(), model=model) for _ in range(6)]

    def send(conversation) -> None:
        message_send(user=conversation.user, conversation_id=conversation.pk, content="race")

    all_at_once(send, conversations)
    replies = Generation.objects.filter(language_model=model)
    assert replies.count() == 6
    assert replies.filter(admitted_at__isnull=False).count() == 1
