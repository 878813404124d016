"""A reply gives its model away when it says a distinctive word of the model's display
name or backend model id, or the id's owner, even if staff listed no words: the vote is
kept, not counted, and says why. Generic words of model names give nothing away."""

from __future__ import annotations

import pytest

from tests.arena import arena_model, replies_end, votes_count  # noqa: F401
from webapp.arena.battles.models import Battle
from webapp.arena.battles.services import battle_start
from webapp.generations.models import Generation

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("votes_count")]


@pytest.fixture
def pair(db):
    return (
        arena_model(
            "llama-3-8b",
            display_name="Llama 3 8B Instruct",
            backend="openai",
            backend_model="meta-llama/Llama-3-8B-Instruct",
        ),
        arena_model("served-by-tgi", display_name="Served Chat Model", backend="tgi"),
    )


@pytest.fixture
def battle(member, pair, unqueued) -> Battle:
    return battle_start(user=member, content="Who are you?").battle


def vote_with(client, battle: Battle, model, reply: str, backend_model_id: str = "") -> dict:
    """End the turn with ``reply`` on ``model``'s side and a plain one on the other, vote."""
    turn = battle.turns.get()
    side_a = battle.model_a == model
    replies_end(turn, *((reply, "A plain answer.") if side_a else ("A plain answer.", reply)))
    if backend_model_id:
        generation = turn.generation_a if side_a else turn.generation_b
        Generation.objects.filter(pk=generation.pk).update(backend_model_id=backend_model_id)
    response = client.post(f"/arena/{battle.pk}/vote/", {"winner": "tie"})
    assert response.status_code == 200
    return response.json()["reveal"]


@pytest.mark.parametrize(
    ("reply", "word"),
    [
        ("I'm Llama, a helpful assistant.", "Llama"),
        ("I was made by META.", "meta"),
        ("Weights: meta-llama on the Hub.", "Llama"),
    ],
)
def test_a_reply_saying_a_word_of_its_models_name_or_owner_is_kept_but_not_counted(
    client, battle, pair, reply, word
):
    reveal = vote_with(client, battle, pair[0], reply)
    side = "A" if battle.model_a == pair[0] else "B"
    assert (reveal["winner"], reveal["counted"]) == ("tie", False)
    assert reveal["not_counted_reason"] == f"Model {side} named itself or its maker ({word!r})."
    battle.refresh_from_db()
    assert (battle.winner, battle.counted) == ("tie", False)
    assert battle.not_counted_reason == reveal["not_counted_reason"]


def test_the_owner_of_the_id_a_server_reported_gives_its_model_away(client, battle, pair):
    reveal = vote_with(
        client,
        battle,
        pair[1],
        "Mistralai trained me.",
        backend_model_id="mistralai/Mistral-7B-Instruct-v0.2",
    )
    assert reveal["counted"] is False
    assert reveal["not_counted_reason"].endswith("named itself or its maker ('mistralai').")


@pytest.mark.parametrize(
    "reply",
    [
        "As a chat model I follow instructions; an instruct model of 8B parameters.",
        "Version 3 of the base model is out as a preview.",
        "Two llamas walk past a metal fence.",
    ],
)
def test_an_ordinary_reply_with_generic_words_of_the_names_still_counts(client, battle, reply):
    replies_end(battle.turns.get(), reply, reply)
    reveal = client.post(f"/arena/{battle.pk}/vote/", {"winner": "tie"}).json()["reveal"]
    assert (reveal["counted"], reveal["not_counted_reason"]) == (True, "")
    battle.refresh_from_db()
    assert battle.counted is True
