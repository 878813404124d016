"""The leaderboard: which votes it reads, its page, staff's recompute and the open data."""

from __future__ import annotations

import json
import math
import re
import time

import numpy as np
import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from tests.factories import GenerationFactory, LanguageModelFactory, UserFactory
from webapp.arena.battles.export import judge_pseudonym
from webapp.arena.battles.leaderboard import Trigger, leaderboard_compute, leaderboard_latest
from webapp.arena.models import Battle, BattleTurn, Leaderboard, VoterFlag, Winner
from webapp.generations.models import Origin

pytestmark = pytest.mark.django_db


def vote(model_a, model_b, winner, *, user=None, counted=True, reason="", at=None):
    return Battle.objects.create(
        user=user or UserFactory(),
        model_a=model_a,
        model_b=model_b,
        winner=winner,
        voted_at=at or timezone.now(),
        counted=counted,
        not_counted_reason=reason,
    )


def votes(model_a, model_b, winner, times, *, user):
    Battle.objects.bulk_create(
        Battle(
            user=user,
            model_a=model_a,
            model_b=model_b,
            winner=winner,
            voted_at=timezone.now(),
            counted=True,
        )
        for _ in range(times)
    )


def rating(board, slug):
    return next(row for row in board.ratings if row["model"] == slug)


@pytest.fixture
def pair():
    return LanguageModelFactory(slug="alpha"), LanguageModelFactory(slug="beta")


@pytest.fixture
def staff(client):
    user = UserFactory(is_staff=True)
    client.force_login(user)
    return user


def test_the_leaderboard_reads_three_to_one_as_400_log10_3_points(pair):
    alpha, beta = pair
    voter = UserFactory()
    votes(alpha, beta, Winner.MODEL_A, 2, user=voter)
    votes(beta, alpha, Winner.MODEL_B, 1, user=voter)  # alpha won from the other side
    votes(alpha, beta, Winner.MODEL_B, 1, user=voter)
    board = leaderboard_compute(trigger=Trigger.STAFF, rounds=20)
    assert board.votes == 4 and board.trigger == "staff" and board.bootstrap_rounds == 20
    assert [row["model"] for row in board.ratings] == ["alpha", "beta"]
    gap = rating(board, "alpha")["rating"] - rating(board, "beta")["rating"]
    assert gap == pytest.approx(400 * math.log10(3), abs=0.02)
    assert rating(board, "alpha")["rating"] + rating(board, "beta")["rating"] == pytest.approx(2000)
    assert rating(board, "alpha")["win_rate"] == 0.75 and rating(board, "beta")["votes"] == 4
    assert board.matrices["models"] == ["alpha", "beta"]
    assert board.matrices["wins"] == [[None, 0.75], [0.25, None]]
    assert board.matrices["battles"] == [[0, 4], [4, 0]]


def test_uncounted_votes_flagged_voters_and_inactive_models_are_left_out(pair):
    alpha, beta = pair
    gone = LanguageModelFactory(slug="gone")
    flagged, honest = UserFactory(), UserFactory()
    VoterFlag.objects.create(user=flagged, reason="votes for one side only")
    votes(alpha, beta, Winner.MODEL_A, 3, user=honest)
    votes(alpha, beta, Winner.MODEL_B, 20, user=flagged)
    vote(alpha, beta, Winner.MODEL_B, counted=False, reason="a reply named its model")
    vote(alpha, beta, Winner.MODEL_B, counted=None)
    Battle.objects.create(user=honest, model_a=alpha, model_b=beta)  # not voted yet
    vote(gone, beta, Winner.MODEL_A)
    gone.is_active = False
    gone.save()
    board = leaderboard_compute(trigger=Trigger.STAFF, rounds=10)
    assert board.votes == 3
    assert [row["model"] for row in board.ratings] == ["alpha", "beta"]
    assert rating(board, "alpha")["win_rate"] == 1.0


def test_flagging_a_voter_later_takes_their_votes_out_of_the_next_leaderboard(pair):
    alpha, beta = pair
    voter = UserFactory()
    votes(alpha, beta, Winner.TIE, 5, user=voter)
    vote(alpha, beta, Winner.BOTH_BAD)
    assert leaderboard_compute(trigger=Trigger.STAFF, rounds=5).votes == 6
    VoterFlag.objects.create(user=voter, reason="bot")
    assert leaderboard_compute(trigger=Trigger.STAFF, rounds=5).votes == 1


def test_no_votes_save_an_empty_leaderboard_and_the_page_says_so(client):
    board = leaderboard_compute(trigger=Trigger.SCHEDULE)
    assert board.votes == 0 and board.ratings == [] and board.matrices["models"] == []
    page = client.get("/leaderboard/")
    assert page.status_code == 200 and 'id="leaderboard-empty"' in page.content.decode()


def test_the_page_before_any_computation_says_none_exists_yet(client):
    page = client.get("/leaderboard/")
    assert page.status_code == 200 and "No leaderboard yet" in page.content.decode()


def test_the_page_shows_when_and_from_how_many_votes_with_the_table_and_three_pictures(
    client, member, pair
):
    alpha, beta = pair
    gamma = LanguageModelFactory(slug="gamma", display_name="Gamma <b>7B</b>")
    votes(alpha, beta, Winner.MODEL_A, 6, user=member)
    votes(beta, gamma, Winner.MODEL_A, 4, user=member)
    votes(gamma, alpha, Winner.TIE, 2, user=member)
    board = leaderboard_compute(trigger=Trigger.SCHEDULE, rounds=30)
    html = client.get("/leaderboard/").content.decode()
    assert "from 12 votes (30 bootstrap rounds)" in html
    assert f'datetime="{board.created_at.isoformat()}"' in html
    table = html[html.index('id="leaderboard-table"') : html.index("</table>")]
    rows = re.findall(r'<tr data-model="([^"]+)">(.*?)</tr>', table, re.S)
    assert [slug for slug, _ in rows] == ["alpha", "beta", "gamma"]
    cells = [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[0][1], re.S)
    ]
    top = board.ratings[0]
    assert cells == [
        str(top["rank"]),
        "Alpha",
        f"{top['rating']:.0f}",
        f"{top['lower']:.0f} \u2013 {top['upper']:.0f}",
        "8",
        f"{round(top['win_rate'] * 100)}%",
    ]
    for chart in ("ratings-chart", "wins-heatmap", "battles-heatmap"):
        assert '<svg class="leaderboard-chart' in html and f'id="{chart}"' in html
    assert "Gamma &lt;b&gt;7B&lt;/b&gt;" in html and "<b>7B</b>" not in html
    # Every picture says what it shows, shape by shape, without script.
    assert "Alpha beat Beta in 100% of their decisive battles" in html
    assert "Alpha and Beta: 6 battles" in html
    assert re.search(r"<title>Alpha: \d+, 95% interval \d+ to \d+, rank 1</title>", html)
    assert "<script>" not in html


def test_models_a_viewer_may_not_view_are_left_out_of_their_page(client, pair):
    alpha, beta = pair
    secret = LanguageModelFactory(
        slug="secret", display_name="Secret model", access_policy="private"
    )
    insiders = Group.objects.create(name="insiders")
    secret.allowed_groups.add(insiders)
    public = LanguageModelFactory(slug="open", display_name="Open model", access_policy="public")
    voter = UserFactory()
    for model in (beta, secret, public):
        votes(alpha, model, Winner.MODEL_A, 2, user=voter)
    leaderboard_compute(trigger=Trigger.STAFF, rounds=5)

    client.force_login(UserFactory())
    html = client.get("/leaderboard/").content.decode()
    assert "Alpha" in html and "Secret model" not in html and 'data-model="secret"' not in html
    insider = UserFactory()
    insider.groups.add(insiders)
    client.force_login(insider)
    assert "Secret model" in client.get("/leaderboard/").content.decode()
    client.logout()
    html = client.get("/leaderboard/").content.decode()  # anonymous: public models only
    assert 'data-model="open"' in html and 'data-model="alpha"' not in html


def test_staffs_button_recomputes_and_the_page_says_so(client, staff, pair):
    alpha, beta = pair
    vote(alpha, beta, Winner.MODEL_A)
    page = client.get("/leaderboard/")
    assert 'id="recompute"' in page.content.decode()
    response = client.post("/leaderboard/recompute", follow=True)
    board = leaderboard_latest()
    assert board.trigger == "staff" and board.votes == 1
    html = response.content.decode()
    assert "Recomputed from 1 votes" in html and "on request of staff" in html


def test_the_recompute_button_needs_a_csrf_token(staff):
    from django.test import Client

    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(staff)
    assert guarded.post("/leaderboard/recompute").status_code == 403
    assert not Leaderboard.objects.exists()


def test_members_may_neither_recompute_nor_export(client, member, pair):
    vote(*pair, Winner.MODEL_A)
    assert client.post("/leaderboard/recompute").status_code == 403
    assert client.get("/leaderboard/battles.jsonl").status_code == 403
    assert not Leaderboard.objects.exists()
    assert 'id="recompute"' not in client.get("/leaderboard/").content.decode()
    client.logout()
    signin = client.post("/leaderboard/recompute")
    assert signin.status_code == 302 and signin["Location"].endswith("?next=/leaderboard/")
    assert client.get("/leaderboard/battles.jsonl")["Location"].startswith("/accounts/login/")
    assert client.get("/leaderboard/recompute").status_code == 405


def export_lines(client):
    response = client.get("/leaderboard/battles.jsonl")
    assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].startswith('attachment; filename="arena-battles-')
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def test_the_export_is_fastchats_battle_format_with_pseudonymous_judges(client, staff, pair):
    alpha, beta = pair
    voter = UserFactory(email="someone@example.org")
    first = vote(alpha, beta, Winner.BOTH_BAD, user=voter)
    for index in range(2):
        BattleTurn.objects.create(
            battle=first,
            index=index,
            content="Hello",
            generation_a=GenerationFactory(
                origin=Origin.ARENA, language_model=alpha, channel_group="battle"
            ),
            generation_b=GenerationFactory(
                origin=Origin.ARENA, language_model=beta, channel_group="battle"
            ),
        )
    vote(beta, alpha, Winner.MODEL_A, user=voter)
    vote(beta, alpha, Winner.MODEL_A, counted=False, reason="a reply named its maker")
    flagged = UserFactory()
    VoterFlag.objects.create(user=flagged, reason="bot")
    vote(beta, alpha, Winner.MODEL_B, user=flagged)

    lines = export_lines(client)
    assert len(lines) == 2
    assert set(lines[0]) >= {"model_a", "model_b", "winner", "tstamp", "anony", "judge", "turn"}
    assert lines[0]["model_a"] == "alpha" and lines[0]["winner"] == "tie (bothbad)"
    assert lines[0]["turn"] == 2 and lines[0]["anony"] is True
    assert lines[0]["tstamp"] == pytest.approx(first.voted_at.timestamp(), abs=0.001)
    assert lines[1]["model_a"] == "beta" and lines[1]["winner"] == "model_a"
    judge = lines[0]["judge"]
    assert judge == lines[1]["judge"] == judge_pseudonym(user_id=voter.pk)
    assert str(voter.pk) not in judge and voter.pk.hex not in judge and "someone" not in judge
    assert judge != judge_pseudonym(user_id=flagged.pk)
    assert export_lines(client)[0]["judge"] == judge  # stable from one export to the next


def _independent_fit(lines):
    """Maximise the per-battle log-likelihood by plain gradient ascent (base 10, scale 400)."""
    names = sorted({line["model_a"] for line in lines} | {line["model_b"] for line in lines})
    index = {name: i for i, name in enumerate(names)}
    a = np.array([index[line["model_a"]] for line in lines])
    b = np.array([index[line["model_b"]] for line in lines])
    score = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}
    y = np.array([score[line["winner"]] for line in lines])
    # A step of 1/(most battles of a model) on the natural scale stays under 2/curvature.
    step = 400 / math.log(10) / np.bincount(np.concatenate([a, b])).max()
    r = np.full(len(names), 1000.0)
    for _ in range(5000):
        p = 1 / (1 + 10 ** ((r[b] - r[a]) / 400))
        gradient = np.zeros(len(names))
        np.add.at(gradient, a, y - p)
        np.add.at(gradient, b, p - y)
        r += step * gradient
        r += 1000 - r.mean()
    return dict(zip(names, r, strict=True))


def test_ratings_fitted_again_from_the_export_agree_with_the_leaderboard(client, staff):
    rng = np.random.default_rng(11)
    models = [LanguageModelFactory(slug=f"m{i}") for i in range(5)]
    strength = [1200, 1100, 1000, 950, 800]
    voters = [UserFactory() for _ in range(4)]
    battles = []
    for _ in range(600):
        i, j = rng.choice(5, 2, replace=False)
        p = 1 / (1 + 10 ** ((strength[j] - strength[i]) / 400))
        u = rng.random()
        winner = (
            "tie"
            if u < 0.1
            else "tie (bothbad)"
            if u < 0.15
            else "model_a"
            if u < 0.15 + 0.85 * p
            else "model_b"
        )
        battles.append(
            Battle(
                user=voters[len(battles) % 4],
                model_a=models[i],
                model_b=models[j],
                winner=winner,
                voted_at=timezone.now(),
                counted=True,
            )
        )
    Battle.objects.bulk_create(battles)
    board = leaderboard_compute(trigger=Trigger.STAFF, rounds=50)
    again = _independent_fit(export_lines(client))
    for row in board.ratings:
        assert again[row["model"]] == pytest.approx(row["rating"], abs=0.1), row["model"]
        assert row["lower"] < row["rating"] < row["upper"]
    assert board.ratings[0]["model"] == "m0" and board.ratings[-1]["model"] == "m4"


def test_the_periodic_job_is_scheduled_and_saves_only_when_votes_changed(pair, settings):
    from webapp.arena.battles.tasks import compute_leaderboard
    from webapp.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["arena-leaderboard"]
    assert entry["task"] == "arena.leaderboard_compute"
    app.loader.import_default_modules()
    assert "arena.leaderboard_compute" in app.tasks
    vote(*pair, Winner.MODEL_A)
    assert compute_leaderboard() == 1
    assert compute_leaderboard() is None  # nothing new: no new row
    vote(*pair, Winner.MODEL_B)
    assert compute_leaderboard() == 2
    alpha = pair[0]
    alpha.display_name = "Alpha 2"
    alpha.save()
    assert compute_leaderboard() == 2  # a renamed model: a board with its new name
    assert {row["name"] for row in leaderboard_latest().ratings} == {"Alpha 2", "Beta"}
    assert Leaderboard.objects.count() == 3
    assert leaderboard_latest().trigger == "schedule"


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_worker_running_the_periodic_job_saves_a_leaderboard(worker):
    from webapp.arena.battles.tasks import compute_leaderboard

    alpha, beta = LanguageModelFactory(slug="w-alpha"), LanguageModelFactory(slug="w-beta")
    vote(alpha, beta, Winner.MODEL_A)
    vote(alpha, beta, Winner.TIE)
    compute_leaderboard.delay()
    deadline = time.monotonic() + 20
    while not Leaderboard.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    board = leaderboard_latest()
    assert board is not None and board.votes == 2 and board.trigger == "schedule"
    assert board.ratings[0]["model"] == "w-alpha" and board.seconds > 0
