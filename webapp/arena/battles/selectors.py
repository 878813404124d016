"""Read access to battles: one battle as its page shows it, blind until the vote."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.urls import reverse

from webapp.core.errors import NotFound
from webapp.core.ids import is_uuid
from webapp.generations.models import Generation

from .models import ArenaEntry, Battle, BattleTurn

SIDES = ("a", "b")
FAILED_DETAIL = "This model could not answer."


def battle_group(battle_id: Any) -> str:
    """Return the channel-layer group both sides of a battle announce their events on."""
    return f"battle.{battle_id}"


def battle_get(*, user: Any, battle_id: Any) -> Battle:
    """Return the user's battle, or raise NotFound (someone else's looks the same)."""
    if not user.is_authenticated or not is_uuid(battle_id):
        raise NotFound("There is no such battle.")
    battle = (
        Battle.objects.select_related("model_a", "model_b").filter(pk=battle_id, user=user).first()
    )
    if battle is None:
        raise NotFound("There is no such battle.")
    return battle


def battle_turns(*, battle: Battle) -> list[BattleTurn]:
    return list(battle.turns.select_related("generation_a", "generation_b").order_by("index"))


def battle_list(*, user: Any, limit: int = 20) -> list[Battle]:
    """Return the user's latest battles (the page names the models of voted ones only)."""
    battles = Battle.objects.filter(user=user).select_related("model_a", "model_b")
    return list(battles.order_by("-created_at")[:limit])


def side_serialize(generation: Generation) -> dict[str, Any]:
    """Return one side of a turn as the page sees it: never its model nor its stats."""
    data: dict[str, Any] = {
        "generation": str(generation.pk),
        "status": generation.status,
        "text": generation.text,
    }
    if generation.error_code:
        data["error"] = {"code": generation.error_code, "detail": FAILED_DETAIL}
    return data


def turn_serialize(turn: BattleTurn) -> dict[str, Any]:
    return {
        "index": turn.index,
        "content": turn.content,
        "a": side_serialize(turn.generation_a),
        "b": side_serialize(turn.generation_b),
    }


def battle_state(*, battle: Battle, turns: list[BattleTurn]) -> dict[str, Any]:
    """Return what the battle page starts from; names only once the battle has its vote."""
    state: dict[str, Any] = {
        "id": str(battle.pk),
        "turns": [turn_serialize(turn) for turn in turns],
        "reveal": battle_reveal(battle=battle) if battle.voted_at else None,
    }
    return state


def battle_reveal(*, battle: Battle) -> dict[str, Any]:
    """Return the vote and the names behind "Model A" and "Model B" (after the vote only)."""
    if battle.voted_at is None:
        raise NotFound("The names are shown once the battle has its vote.")
    reveal: dict[str, Any] = {
        "winner": battle.winner,
        "winner_label": battle.get_winner_display(),
        "counted": bool(battle.counted),
        "not_counted_reason": battle.not_counted_reason,
    }
    for side, model in zip(SIDES, (battle.model_a, battle.model_b), strict=True):
        reveal[side] = {
            "name": model.display_name,
            "slug": model.slug,
            "url": reverse("catalog:model_detail", kwargs={"slug": model.slug}),
        }
    return reveal


# Words of model names that name no model in particular: a reply may say them freely.
_GENERIC = """
    alpha assistant awq base beta bot chat chatbot code coder distill edition exp
    experimental fine for gguf gptq hub instruct instruction int large latest lite llm
    medium mini model models nano new online plus preview pro small the tiny tuned turbo
    ultra uncensored version vision with
    one two three four five six seven eight nine ten eleven twelve
"""
GENERIC_WORDS = frozenset(_GENERIC.split())


def give_away_words(*, model: Any, backend_ids: Iterable[str] = ()) -> list[str]:
    """Return the words that name ``model`` or its maker: a reply saying one is not blind.

    These are its display name, its slug, the words staff listed, and the distinctive
    words of its display name and of its backend model ids (the one configured and
    ``backend_ids``, those its servers reported), with the ids' owners ("meta-llama").
    """
    words = [model.display_name, model.slug, model.slug.replace("-", " ")]
    entry = ArenaEntry.objects.filter(language_model=model).first()
    if entry is not None:
        words += entry.give_away_words.splitlines()
    for name in (model.display_name, model.backend_model, *backend_ids):
        words += _distinctive_words(name)
    unique = {word.strip().lower(): word.strip() for word in words if len(word.strip()) >= 2}
    return sorted(unique.values(), key=str.lower)


def _distinctive_words(name: str) -> list[str]:
    """Return the words of a model's name that could only name it, and its owner if any.

    A word is a run of letters: sizes and versions ("8B", "v0.1", "3.5") leave none
    worth keeping, and words under three letters or in GENERIC_WORDS are dropped.
    """
    words = [
        word
        for word in re.findall(r"[^\W\d_]+", name)
        if len(word) >= 3 and word.lower() not in GENERIC_WORDS
    ]
    owner, slash, _ = name.partition("/")
    if slash and len(owner) >= 3 and owner.lower() not in GENERIC_WORDS:
        words.append(owner)
    return words


def word_said(text: str, words: list[str]) -> str | None:
    """Return the first of ``words`` that ``text`` says as a word of its own, any case."""
    for word in words:
        if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, flags=re.IGNORECASE):
            return word
    return None
