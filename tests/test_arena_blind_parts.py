"""The parts that keep an arena side blind, each on its own: the claim hands the worker the
flag, a blind side's end is logged without stats and with a plain failure, and the saved
summary says nothing of the model; a generation that is not blind keeps all of it."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction

from inference import relay
from inference.backends import Endpoint
from inference.generation import BLIND_ERROR_DETAIL, Generation, Job, Limits
from inference.params import params_parse
from tests.arena import arena_model
from webapp.generations.models import Generation as GenerationRecord
from webapp.generations.selectors import generation_summary
from webapp.generations.services import generation_claim, generation_create, generation_unblind

LIMITS = Limits(1, 1, 1, 10, 1, 0.05, 16)


def job(*, blind: bool) -> Job:
    return Job(
        generation_id=str(uuid.uuid4()),
        group="battle.test",
        endpoint=Endpoint(kind="openai", url="http://127.0.0.1:9", api_key="", model="m"),
        messages=[{"role": "user", "content": "Hi"}],
        params=params_parse({}, backend="openai"),
        blind=blind,
    )


async def ended(blind: bool, *, error: bool = False) -> dict:
    generation = Generation(job(blind=blind), LIMITS)
    outcome = generation.outcome
    outcome.generated_tokens, outcome.tokens_per_second = 12, 40.0
    outcome.model_id = "acme/secret-backend"
    if error:
        outcome.status = "failed"
        outcome.error_code = "backend_unavailable"
        outcome.error_detail = "The server said: model acme/secret-backend is not loaded."
    await generation.done()
    return (await relay.log_read(generation.job.generation_id))[-1]


async def test_a_blind_sides_end_is_logged_without_stats_and_a_plain_ones_with_them():
    blind, plain = await ended(True), await ended(False)
    assert blind["type"] == plain["type"] == "done"
    assert "stats" not in blind
    assert plain["stats"]["model_id"] == "acme/secret-backend"
    assert plain["stats"]["tokens_per_second"] == 40.0


async def test_a_blind_sides_failure_says_a_plain_sentence_instead_of_the_servers_words():
    blind, plain = await ended(True, error=True), await ended(False, error=True)
    assert blind["error"] == {"code": "backend_unavailable", "detail": BLIND_ERROR_DETAIL}
    assert "acme/secret-backend" in plain["error"]["detail"]


@pytest.mark.django_db(transaction=True)
def test_the_claim_hands_the_worker_the_blind_flag(user, inference, admit):
    model = arena_model("claim-blind", url=inference.url)
    with transaction.atomic():
        created = [
            generation_create(
                user=user,
                model=model,
                origin="arena",
                messages=[{"role": "user", "content": "Hi"}],
                blind=blind,
            )
            for blind in (True, False)
        ]
    admit(model)
    jobs = [generation_claim(generation_id=str(g.pk)) for g in created]
    assert [j.blind for j in jobs] == [True, False]


@pytest.mark.django_db
def test_a_blind_summary_names_no_model_until_it_is_unblinded(user, unqueued):
    model = arena_model("summary-blind", display_name="Summary Blind")
    generation = generation_create(
        user=user,
        model=model,
        origin="arena",
        messages=[{"role": "user", "content": "Hi"}],
        blind=True,
    )
    GenerationRecord.objects.filter(pk=generation.pk).update(
        status="failed",
        error_code="backend_failed",
        error_detail="Summary Blind broke",
        backend_model_id="acme/x",
        tokens_per_second=3.0,
    )
    generation.refresh_from_db()
    summary = generation_summary(generation)
    assert summary == {
        "id": str(generation.pk),
        "status": "failed",
        "blind": True,
        "error": {"code": "backend_failed", "detail": BLIND_ERROR_DETAIL},
    }
    assert generation_unblind(generation_ids=[generation.pk]) == 1
    generation.refresh_from_db()
    shown = generation_summary(generation)
    assert shown["model"]["name"] == "Summary Blind"
    assert shown["stats"]["model_id"] == "acme/x"
