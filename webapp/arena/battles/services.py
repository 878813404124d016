"""Write access to battles: start one, send another turn, vote.

Both sides of a turn are blind generations (origin ``arena``) announced on the
battle's group; the vote is written once (a conditional UPDATE) and only then
are the sides unblinded. Whether a vote counts is decided as it is cast; staff
flags on voters are applied when the ratings are computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from webapp.catalog.policy import AccessRefused
from webapp.core.errors import ApplicationError, Conflict, PermissionDenied, ValidationFailed
from webapp.generations.models import ACTIVE_STATUSES, Generation, Origin, Status
from webapp.generations.services import generation_create, generation_unblind

from .models import Battle, BattleTurn, VoterFlag, Winner
from .pairing import battle_pair_draw
from .selectors import SIDES, battle_get, battle_group, battle_turns, give_away_words, word_said

ALREADY_VOTED = "This battle has its vote already; start a new battle."
STILL_RUNNING = "Wait until both models have finished their replies."


@dataclass(frozen=True)
class Sent:
    battle: Battle
    turn: BattleTurn


def battle_start(*, user: Any, content: Any) -> Sent:
    """Draw two models for ``user`` and send them the first prompt of a new battle."""
    content = _content(content)
    model_a, model_b = battle_pair_draw(user=user)
    with transaction.atomic():
        battle = Battle.objects.create(user=user, model_a=model_a, model_b=model_b)
        turn = _turn_create(battle=battle, index=0, content=content, history=[])
    return Sent(battle=battle, turn=turn)


def battle_turn_send(*, user: Any, battle_id: Any, content: Any) -> Sent:
    """Send the next prompt of a battle to both its models (before the vote only)."""
    content = _content(content)
    with transaction.atomic():
        battle = _unvoted_locked(user=user, battle_id=battle_id)
        turns = battle_turns(battle=battle)
        if len(turns) >= settings.ARENA_MAX_TURNS:
            raise Conflict(
                f"A battle has at most {settings.ARENA_MAX_TURNS} turns: vote now.",
                code="too_many_turns",
            )
        if any(_side(turn, side).status in ACTIVE_STATUSES for turn in turns for side in SIDES):
            raise Conflict(STILL_RUNNING, code="busy")
        try:
            with transaction.atomic():
                turn = _turn_create(battle=battle, index=len(turns), content=content, history=turns)
        except IntegrityError as exc:  # a second send of the same turn at the same time
            raise Conflict(STILL_RUNNING, code="busy") from exc
    return Sent(battle=battle, turn=turn)


def _unvoted_locked(*, user: Any, battle_id: Any) -> Battle:
    """Return the user's battle with its row locked for this transaction, if not voted.

    A concurrent vote or turn waits on the lock, then sees what the first one did.
    """
    battle = battle_get(user=user, battle_id=battle_id)
    locked = Battle.objects.select_for_update().only("voted_at").get(pk=battle.pk)
    if locked.voted_at is not None:
        raise Conflict(ALREADY_VOTED, code="already_voted")
    return battle


def _turn_create(
    *, battle: Battle, index: int, content: str, history: list[BattleTurn]
) -> BattleTurn:
    """Create the two blind generations of a turn (one per side) and the turn."""
    group = battle_group(battle.pk)
    generations = {}
    for side, model in zip(SIDES, (battle.model_a, battle.model_b), strict=True):
        messages = [*_messages(history, side), {"role": "user", "content": content}]
        try:
            generations[side] = generation_create(
                user=battle.user,
                model=model,
                origin=Origin.ARENA,
                messages=messages,
                group=group,
                blind=True,
            )
        except AccessRefused as exc:
            raise SideRefused(exc) from exc
        except ApplicationError as exc:
            _blind(exc)
            raise
    return BattleTurn.objects.create(
        battle=battle,
        index=index,
        content=content,
        generation_a=generations["a"],
        generation_b=generations["b"],
    )


# A refusal of generation_create may name the model (access, its token budget): said blind.
BLIND_REFUSALS = {
    "daily_tokens": "You have used today's token budget of one of this battle's models; "
    "it resets at midnight UTC. Vote on what you have read, or start a new battle.",
    "invalid_params": "One of this battle's models is misconfigured; tell the site's staff.",
}


class SideRefused(PermissionDenied):
    """The access rule refused one side's model; the detail names no model, and
    ``refused`` (the rule's own refusal) is what the audit log records."""

    def __init__(self, refused: AccessRefused) -> None:
        super().__init__(
            "One of this battle's models is no longer open to you: vote on what you have "
            "read, or start a new battle."
        )
        self.refused = refused


def _blind(exc: ApplicationError) -> None:
    """Word a refusal so that it names no model (its code and any retry_after stay)."""
    detail = BLIND_REFUSALS.get(exc.code)
    if detail is not None:
        exc.detail, exc.args = detail, (detail,)


def _messages(history: list[BattleTurn], side: str) -> list[Any]:
    """Return the conversation one side has had so far: every prompt, and its own replies."""
    messages: list[Any] = []
    for turn in history:
        messages.append({"role": "user", "content": turn.content})
        reply = _side(turn, side).text
        if reply:
            messages.append({"role": "assistant", "content": reply})
    return messages


def _side(turn: BattleTurn, side: str) -> Generation:
    return turn.generation_a if side == "a" else turn.generation_b


def _content(content: Any) -> str:
    if not isinstance(content, str) or not content.strip():
        raise ValidationFailed("Write a prompt first.", code="empty")
    if len(content) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise ValidationFailed(
            f"A prompt is at most {settings.CHAT_MAX_MESSAGE_CHARS} characters.", code="too_long"
        )
    return content


def battle_vote(*, user: Any, battle_id: Any, winner: Any) -> Battle:
    """Record the user's vote on their battle, once, and unblind its sides.

    Nothing changes when the vote is refused: a value not in the list, someone
    else's battle, a battle voted already, replies still running or none finished.
    """
    if winner not in Winner.values:
        choices = ", ".join(repr(value) for value in Winner.values)
        raise ValidationFailed(f"A vote is one of {choices}.", code="invalid_vote")
    with transaction.atomic():
        battle = _unvoted_locked(user=user, battle_id=battle_id)
        turns = battle_turns(battle=battle)
        _check_votable(turns)
        _voter_lock(user=user)
        counted, reason = _counting(user=user, battle=battle, turns=turns)
        now = timezone.now()
        fields = {"winner": winner, "counted": counted, "not_counted_reason": reason}
        voted = Battle.objects.filter(pk=battle.pk, voted_at__isnull=True).update(
            voted_at=now, updated_at=now, **fields
        )
        if voted != 1:
            raise Conflict(ALREADY_VOTED, code="already_voted")
        sides = [_side(turn, side).pk for turn in turns for side in SIDES]
        generation_unblind(generation_ids=sides)
    battle.refresh_from_db()
    return battle


def _voter_lock(*, user: Any) -> None:
    """Take the voter's row lock until the vote is saved, so that their votes on other
    battles are counted against the daily cap one after the other.

    FOR NO KEY UPDATE: rows that merely refer to the user are not held up.
    """
    get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk).exists()


def _check_votable(turns: list[BattleTurn]) -> None:
    sides = [_side(turn, side) for turn in turns for side in SIDES]
    if not sides:
        raise ValidationFailed("Send a prompt and read both replies first.", code="no_reply")
    if any(generation.status in ACTIVE_STATUSES for generation in sides):
        raise Conflict(STILL_RUNNING, code="busy")
    if not any(generation.status == Status.DONE for generation in sides):
        raise ValidationFailed(
            "Neither model has finished a reply yet: send another prompt before voting.",
            code="no_reply",
        )


def _counting(*, user: Any, battle: Battle, turns: list[BattleTurn]) -> tuple[bool, str]:
    """Return whether the vote counts toward the ratings and, if not, why."""
    for side, model in zip(SIDES, (battle.model_a, battle.model_b), strict=True):
        reported = {_side(turn, side).backend_model_id for turn in turns} - {""}
        words = give_away_words(model=model, backend_ids=reported)
        for turn in turns:
            said = word_said(_side(turn, side).text, words)
            if said is not None:
                return False, f"Model {side.upper()} named itself or its maker ({said!r})."[:200]
    age = timedelta(hours=settings.ARENA_MIN_ACCOUNT_AGE_HOURS)
    if user.date_joined > timezone.now() - age:
        return False, f"The account is younger than {_hours(age)}."
    today = Battle.objects.filter(
        user=user, counted=True, voted_at__gte=timezone.now() - timedelta(days=1)
    )
    if today.count() >= settings.ARENA_DAILY_VOTES:
        return False, f"Over the cap of {settings.ARENA_DAILY_VOTES} counted votes a day."
    return True, ""


def _hours(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:g} hour" + ("" if hours == 1 else "s")


def voter_flag(*, user: Any, reason: str, flagged_by: Any) -> VoterFlag:
    """Flag a voter: their votes stay, and the next ratings leave them out."""
    flag, _ = VoterFlag.objects.update_or_create(
        user=user, defaults={"reason": reason[:200], "flagged_by": flagged_by}
    )
    return flag
