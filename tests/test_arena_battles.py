"""Blind battles through their pages and JSON writes: start, next turn, vote, reveal; bad
input gets a clear error and changes nothing; a vote counts only while the models were
anonymous, from an account old enough and under the daily cap."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.test import Client
from django.utils import timezone

from tests.arena import arena_model, replies_end, votes_count  # noqa: F401
from tests.concurrency import all_at_once
from tests.factories import UserFactory
from webapp.access.models import AuditEntry
from webapp.arena.battles import selectors, services
from webapp.arena.battles.models import Battle, BattleTurn, VoterFlag
from webapp.arena.battles.services import battle_start, battle_vote
from webapp.catalog.models import AccessPolicy, LanguageModel
from webapp.core.errors import Conflict
from webapp.generations.models import Generation

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("votes_count")]


@pytest.fixture
def pair(db):
    return (
        arena_model("orca-7b", display_name="Orca 7B", words="Orcalabs"),
        arena_model("heron-2", display_name="Heron Two", words="Heron Institute"),
    )


@pytest.fixture
def battle(member, pair, unqueued):
    sent = battle_start(user=member, content="Tell me a joke")
    return sent.battle


def names_of(pair) -> list[str]:
    words = []
    for model in pair:
        words += [model.slug, model.display_name, model.arena_entry.give_away_words]
    return [*words, "hidden/backend-id"]


def assert_blind(text: str, pair) -> None:
    for word in names_of(pair):
        assert word.lower() not in text.lower(), word
    for stat in ("tokens_per_second", "model_id", "generated_tokens", "time_to_first_token"):
        assert stat not in text, stat


def snapshot(battle: Battle) -> tuple:
    battle.refresh_from_db()
    turns = BattleTurn.objects.filter(battle=battle).count()
    blind = Generation.objects.filter(blind=True).count()
    return battle.winner, battle.voted_at, battle.counted, turns, blind


def vote(client, battle, winner="model_a"):
    return client.post(f"/arena/{battle.pk}/vote/", {"winner": winner})


def test_a_battle_starts_with_two_blind_replies_and_names_neither_model(
    client, member, pair, unqueued
):
    response = client.post("/arena/battles/", {"content": "Who are you?"})

    assert response.status_code == 201
    assert_blind(response.content.decode(), pair)
    body = response.json()
    battle = Battle.objects.get(pk=body["battle"], user=member)
    assert {battle.model_a, battle.model_b} == set(pair)
    assert body["url"] == f"/arena/{battle.pk}/"
    generations = Generation.objects.filter(origin="arena")
    assert generations.count() == 2
    assert all(g.blind and g.channel_group == f"battle.{battle.pk}" for g in generations)
    assert body["turn"]["a"]["generation"] == str(battle.turns.get().generation_a_id)


def test_the_battle_page_names_the_models_only_after_the_vote(client, battle, pair):
    turn = battle.turns.get()
    replies_end(turn)
    page = client.get(f"/arena/{battle.pk}/")
    assert page.status_code == 200
    assert "Model A" in page.content.decode()
    assert_blind(page.content.decode(), pair)
    assert_blind(client.get("/arena/").content.decode(), pair)

    response = vote(client, battle)
    assert response.status_code == 200
    reveal = response.json()["reveal"]
    assert (reveal["a"]["name"], reveal["b"]["name"]) == (
        battle.model_a.display_name,
        battle.model_b.display_name,
    )
    assert reveal["a"]["url"] == f"/models/{battle.model_a.slug}/"
    after = client.get(f"/arena/{battle.pk}/").content.decode()
    assert battle.model_a.display_name in after and battle.model_b.display_name in after


def test_the_details_of_a_blind_reply_are_refused_until_the_vote(client, battle):
    turn = battle.turns.get()
    replies_end(turn)
    refused = client.get(f"/generations/{turn.generation_a_id}/")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "blind"
    assert battle.model_a.slug not in refused.content.decode()

    vote(client, battle)
    details = client.get(f"/generations/{turn.generation_a_id}/").json()
    assert details["model"]["slug"] == battle.model_a.slug
    assert details["stats"]["tokens_per_second"] == 42.0


def test_a_next_turn_waits_for_both_replies_and_each_side_keeps_its_own_history(client, battle):
    turn = battle.turns.get()
    busy = client.post(f"/arena/{battle.pk}/turns/", {"content": "Another"})
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "busy"
    assert battle.turns.count() == 1

    replies_end(turn, "A's joke.", "B's joke.")
    sent = client.post(f"/arena/{battle.pk}/turns/", {"content": "Another"})
    assert sent.status_code == 201
    second = battle.turns.get(index=1)
    assert second.generation_a.messages == [
        {"role": "user", "content": "Tell me a joke"},
        {"role": "assistant", "content": "A's joke."},
        {"role": "user", "content": "Another"},
    ]
    assert second.generation_b.messages[1]["content"] == "B's joke."


def test_a_model_closed_to_the_user_mid_battle_is_refused_without_its_name(client, battle, pair):
    replies_end(battle.turns.get())
    LanguageModel.objects.filter(pk=battle.model_b_id).update(access_policy=AccessPolicy.PRIVATE)
    refused = client.post(f"/arena/{battle.pk}/turns/", {"content": "Still there?"})
    assert refused.status_code == 403
    assert "no longer open to you" in refused.json()["error"]["detail"]
    assert_blind(refused.content.decode(), pair)
    assert battle.turns.count() == 1
    assert Generation.objects.count() == 2
    audited = AuditEntry.objects.get(action="arena.refused")  # staff see the real reason
    assert audited.target == battle.model_b.slug
    assert "named groups" in audited.detail["reason"]


def test_a_battle_has_at_most_the_set_number_of_turns(client, battle, settings):
    settings.ARENA_MAX_TURNS = 1
    replies_end(battle.turns.get())
    refused = client.post(f"/arena/{battle.pk}/turns/", {"content": "More"})
    assert refused.status_code == 409
    assert "at most 1 turns" in refused.json()["error"]["detail"]


def test_bad_votes_get_a_clear_error_and_change_nothing(client, battle, pair):
    before = snapshot(battle)
    assert vote(client, battle).status_code == 409  # the replies are still running
    assert snapshot(battle) == before

    replies_end(battle.turns.get())
    before = snapshot(battle)
    forged = client.post(f"/arena/{uuid.uuid4()}/vote/", {"winner": "model_a"})
    assert (forged.status_code, forged.json()["error"]["code"]) == (404, "not_found")
    wrong = vote(client, battle, winner="model_c")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "invalid_vote")
    assert "'tie (bothbad)'" in wrong.json()["error"]["detail"]
    missing = client.post(f"/arena/{battle.pk}/vote/", {})
    assert missing.status_code == 400

    stranger = Client()
    stranger.force_login(UserFactory())
    theirs = vote(stranger, battle)
    assert theirs.status_code == 404
    assert stranger.get(f"/arena/{battle.pk}/").status_code == 404
    assert stranger.post(f"/arena/{battle.pk}/turns/", {"content": "x"}).status_code == 404
    assert snapshot(battle) == before

    assert vote(client, battle, winner="tie (bothbad)").status_code == 200
    voted = snapshot(battle)
    again = vote(client, battle, winner="model_b")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_voted")
    assert snapshot(battle) == voted
    assert voted[0] == "tie (bothbad)"
    late = client.post(f"/arena/{battle.pk}/turns/", {"content": "x"})
    assert late.status_code == 409


def test_a_vote_when_no_reply_finished_is_refused(client, battle):
    replies_end(battle.turns.get(), "", "", status="failed")
    refused = vote(client, battle)
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "no_reply")
    assert Battle.objects.get(pk=battle.pk).voted_at is None


def test_every_write_needs_the_csrf_token(member, pair, unqueued):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    assert strict.post("/arena/battles/", {"content": "Hi"}).status_code == 403
    assert not Battle.objects.exists()
    page = strict.get("/arena/")
    token = page.cookies["csrftoken"].value
    started = strict.post("/arena/battles/", {"content": "Hi"}, HTTP_X_CSRFTOKEN=token)
    assert started.status_code == 201
    battle_id = started.json()["battle"]
    assert strict.post(f"/arena/{battle_id}/vote/", {"winner": "tie"}).status_code == 403
    assert strict.post(f"/arena/{battle_id}/turns/", {"content": "x"}).status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(pair):
    anonymous = Client()
    assert anonymous.get("/arena/").status_code == 302
    refused = anonymous.post("/arena/battles/", {"content": "Hi"})
    assert refused.status_code in (401, 403)
    assert not Battle.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("guard", ["lock and conditional update", "conditional update alone"])
def test_concurrent_votes_on_one_battle_count_once(pair, unqueued, settings, monkeypatch, guard):
    settings.ARENA_MIN_ACCOUNT_AGE_HOURS = 0
    if guard == "conditional update alone":  # the row lock taken away: the UPDATE still holds
        monkeypatch.setattr(services, "_unvoted_locked", selectors.battle_get)
    user = UserFactory()
    battle = battle_start(user=user, content="Race").battle
    replies_end(battle.turns.get())
    winners = ["model_a", "model_b", "tie", "tie (bothbad)"] * 2
    results = []

    def cast(winner: str) -> None:
        try:
            battle_vote(user=user, battle_id=battle.pk, winner=winner)
            results.append(("voted", winner))
        except Conflict as exc:
            results.append((exc.code, winner))

    all_at_once(cast, winners)

    voted = [winner for outcome, winner in results if outcome == "voted"]
    assert len(voted) == 1
    assert sorted(outcome for outcome, _ in results).count("already_voted") == len(winners) - 1
    battle.refresh_from_db()
    assert battle.winner == voted[0] and battle.counted is True


@pytest.mark.django_db(transaction=True)
def test_concurrent_votes_on_different_battles_never_pass_the_daily_cap(
    pair, unqueued, settings, monkeypatch
):
    settings.ARENA_DAILY_VOTES = 3
    user = UserFactory()
    for _ in range(2):
        battle = battle_start(user=user, content="Earlier").battle
        replies_end(battle.turns.get())
        battle_vote(user=user, battle_id=battle.pk, winner="model_a")
    battles = []
    for _ in range(4):
        battles.append(battle_start(user=user, content="Race").battle)
        replies_end(battles[-1].turns.get())
    counting = services._counting

    def slow_counting(**kwargs):  # a slow moment between counting and saving the vote
        decided = counting(**kwargs)
        time.sleep(0.2)
        return decided

    monkeypatch.setattr(services, "_counting", slow_counting)
    all_at_once(lambda battle: battle_vote(user=user, battle_id=battle.pk, winner="tie"), battles)

    raced = Battle.objects.filter(pk__in=[battle.pk for battle in battles])
    assert raced.filter(voted_at__isnull=False).count() == len(battles)
    assert raced.filter(counted=True).count() == 1
    assert set(raced.filter(counted=False).values_list("not_counted_reason", flat=True)) == {
        "Over the cap of 3 counted votes a day."
    }
    assert Battle.objects.filter(user=user, counted=True).count() == 3


@pytest.mark.parametrize(
    "reply",
    ["I am Orca 7B, happy to help.", "As a model trained by ORCALABS, I think", "orca-7b here"],
)
def test_a_reply_naming_its_own_model_or_maker_is_kept_but_not_counted(client, battle, pair, reply):
    orca = pair[0]
    turn = battle.turns.get()
    if battle.model_a == orca:
        replies_end(turn, reply, "A plain answer.")
    else:
        replies_end(turn, "A plain answer.", reply)
    assert vote(client, battle, winner="tie").status_code == 200
    battle.refresh_from_db()
    assert battle.winner == "tie"
    assert battle.counted is False
    side = "A" if battle.model_a == orca else "B"
    assert battle.not_counted_reason.startswith(f"Model {side} named itself or its maker")


def test_a_word_inside_another_word_does_not_give_a_model_away(client, battle):
    replies_end(battle.turns.get(), "The orcas and herons of the bay.", "Heronsbridge is a town.")
    vote(client, battle)
    battle.refresh_from_db()
    assert (battle.counted, battle.not_counted_reason) == (True, "")


def test_votes_of_a_young_account_are_kept_but_not_counted(client, battle, settings):
    settings.ARENA_MIN_ACCOUNT_AGE_HOURS = 24
    replies_end(battle.turns.get())
    response = vote(client, battle)
    assert response.status_code == 200
    assert response.json()["reveal"]["counted"] is False
    battle.refresh_from_db()
    assert (battle.winner, battle.counted) == ("model_a", False)
    assert battle.not_counted_reason == "The account is younger than 24 hours."


def test_votes_past_the_daily_cap_are_kept_but_not_counted(client, member, pair, settings):
    settings.ARENA_DAILY_VOTES = 2
    counted = []
    for _ in range(3):
        battle = battle_start(user=member, content="Again").battle
        replies_end(battle.turns.get())
        assert vote(client, battle).status_code == 200
        battle.refresh_from_db()
        counted.append((battle.counted, battle.not_counted_reason))
    assert counted == [
        (True, ""),
        (True, ""),
        (False, "Over the cap of 2 counted votes a day."),
    ]


def test_staff_enable_models_set_weights_and_flag_voters(client, battle, pair):
    staff = UserFactory(is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(staff)
    assert admin.get("/admin/arena/arenaentry/").status_code == 200
    assert admin.get("/admin/arena/battle/").status_code == 200
    response = admin.post(
        "/admin/arena/battle/",
        {"action": "flag_voters", "_selected_action": [str(battle.pk)]},
    )
    assert response.status_code == 302
    flag = VoterFlag.objects.get(user=battle.user)
    assert flag.flagged_by == staff
    assert Battle.objects.get(pk=battle.pk).winner == ""  # the battle itself is untouched

    assert admin.get("/admin/arena/arenaentry/add/").status_code == 200
    other = UserFactory()
    added = admin.post("/admin/arena/voterflag/add/", {"user": other.pk, "reason": "Sockpuppet"})
    assert added.status_code == 302
    assert VoterFlag.objects.get(user=other).flagged_by == staff

    entry = pair[0].arena_entry
    changed = admin.post(
        "/admin/arena/arenaentry/",
        {
            "form-TOTAL_FORMS": "2",
            "form-INITIAL_FORMS": "2",
            "form-0-id": str(pair[1].arena_entry.pk),
            "form-0-enabled": "on",
            "form-0-weight": "1.0",
            "form-1-id": str(entry.pk),
            "form-1-weight": "2.5",
            "_save": "Save",
        },
    )
    assert changed.status_code == 302
    entry.refresh_from_db()
    assert (entry.enabled, entry.weight) == (False, 2.5)


def test_a_voted_battle_keeps_its_replies_and_its_time(client, battle):
    replies_end(battle.turns.get())
    before = timezone.now()
    vote(client, battle)
    battle.refresh_from_db()
    assert battle.voted_at >= before
    assert not Generation.objects.filter(blind=True).exists()
    state = json.loads(
        client.get(f"/arena/{battle.pk}/")
        .content.decode()
        .split('id="battle-state" type="application/json">')[1]
        .split("</script>")[0]
    )
    assert [t["a"]["text"] for t in state["turns"]] == ["First answer."]
    assert state["reveal"]["winner"] == "model_a"


def test_the_arena_says_so_when_fewer_than_two_models_are_open(client, member):
    arena_model("only-one")
    page = client.get("/arena/").content.decode()
    assert "The arena needs two models you may use" in page
    assert 'data-unavailable="true"' in page
    refused = client.post("/arena/battles/", {"content": "Hi"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "no_pair")
    assert not Battle.objects.exists()
