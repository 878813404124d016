"""The Bradley-Terry fit on its own: hand-computed cases and the properties a rating must have."""

from __future__ import annotations

import math

import numpy as np
import pytest

from webapp.arena.battles.ratings import (
    A_WINS,
    B_WINS,
    TIE,
    Outcomes,
    bootstrap_scores,
    outcomes_count,
    ranks,
    ratings_compute,
    ratings_fit,
)


def outcomes(size, battles):
    """``battles``: (a, b, outcome, how many) rows."""
    a, b, outcome, count = (np.array(column) for column in zip(*battles, strict=True))
    return outcomes_count(size=size, a=a, b=b, outcome=outcome, count=count)


def test_a_consistent_three_model_case_gets_the_ratings_worked_out_by_hand():
    # A beats B 2-1, B beats C 2-1, A beats C 4-1: odds 2, 2 and 4 = 2 x 2, so the observed
    # frequencies are the model's probabilities and the maximum likelihood is at
    # R_A - R_B = R_B - R_C = 400 log10(2) = 120.41, centred on 1000.
    board = outcomes(
        3,
        [
            (0, 1, A_WINS, 2),
            (0, 1, B_WINS, 1),
            (1, 2, A_WINS, 2),
            (1, 2, B_WINS, 1),
            (0, 2, A_WINS, 4),
            (2, 0, A_WINS, 1),
        ],
    )
    assert ratings_fit(board.scores) == pytest.approx([1120.41, 1000.0, 879.59], abs=0.01)


def test_a_tie_counts_as_half_a_win_for_each_side():
    # One win and two ties for A against B score 2 to 1, as two wins and a loss do.
    tied = outcomes(2, [(0, 1, A_WINS, 1), (1, 0, TIE, 2)])
    plain = outcomes(2, [(0, 1, A_WINS, 2), (0, 1, B_WINS, 1)])
    assert ratings_fit(tied.scores) == pytest.approx(ratings_fit(plain.scores), abs=1e-6)
    assert tied.battles[0, 1] == 3 and tied.ties[0, 1] == tied.ties[1, 0] == 2


@pytest.mark.parametrize("won, lost", [(3, 1), (9, 1), (50, 37), (1, 1)])
def test_the_rating_gap_of_two_models_is_400_log10_of_their_win_odds(won, lost):
    rating = ratings_fit(outcomes(2, [(0, 1, A_WINS, won), (0, 1, B_WINS, lost)]).scores)
    assert rating[0] - rating[1] == pytest.approx(400 * math.log10(won / lost), abs=0.01)


def test_ratings_are_anchored_on_a_mean_of_1000():
    rng = np.random.default_rng(3)
    size, n = 7, 2000
    a = rng.integers(0, size, n)
    b = (a + rng.integers(1, size, n)) % size
    board = outcomes_count(size=size, a=a, b=b, outcome=rng.integers(0, 3, n))
    assert ratings_fit(board.scores).mean() == pytest.approx(1000.0, abs=1e-6)


def test_a_model_that_wins_every_battle_ranks_first_with_a_finite_rating():
    rng = np.random.default_rng(5)
    size, n = 5, 400
    a = rng.integers(0, size, n)
    b = (a + rng.integers(1, size, n)) % size
    outcome = rng.choice([A_WINS, B_WINS, TIE], n)
    outcome[a == 2] = A_WINS
    outcome[b == 2] = B_WINS
    result = ratings_compute(outcomes_count(size=size, a=a, b=b, outcome=outcome), rounds=50)
    assert np.isfinite(result.rating).all() and np.argmax(result.rating) == 2
    assert result.rank[2] == 1 and result.win_rate[2] == 1.0
    assert (result.rating[2] > result.upper[np.arange(size) != 2]).all()


def test_swapping_a_and_b_in_every_battle_with_the_winner_swapped_changes_nothing():
    rng = np.random.default_rng(8)
    size, n = 6, 1500
    a = rng.integers(0, size, n)
    b = (a + rng.integers(1, size, n)) % size
    outcome = rng.integers(0, 3, n)
    swapped = np.select([outcome == A_WINS, outcome == B_WINS], [B_WINS, A_WINS], TIE)
    first = ratings_compute(outcomes_count(size=size, a=a, b=b, outcome=outcome), rounds=40)
    second = ratings_compute(outcomes_count(size=size, a=b, b=a, outcome=swapped), rounds=40)
    for field in ("rating", "lower", "upper", "rank", "votes", "win_rate", "battles"):
        assert getattr(first, field) == pytest.approx(getattr(second, field)), field


def test_a_rank_is_one_plus_the_models_whose_interval_is_wholly_above():
    lower = np.array([1100.0, 1090.0, 1000.0, 900.0])
    upper = np.array([1200.0, 1150.0, 1095.0, 990.0])
    # Model 2's interval touches model 1's, not model 0's; model 3 is below all three.
    assert ranks(lower=lower, upper=upper).tolist() == [1, 1, 2, 4]


def test_a_bootstrap_round_draws_as_many_battles_as_there_were_from_the_same_pairs():
    board = outcomes(3, [(0, 1, A_WINS, 30), (1, 2, TIE, 10), (2, 0, B_WINS, 5)])
    scores = bootstrap_scores(board, rounds=200, rng=np.random.default_rng(1))
    totals = scores.sum(axis=(1, 2))
    assert (totals == 45).all()
    assert (scores[:, 1, 0] == 0).all()  # model 1 never beat model 0: no round says it did
    assert scores[:, 0, 1].mean() == pytest.approx(30, rel=0.05)
    # Ties drawn are halves on both sides.
    assert (scores[:, 1, 2] == scores[:, 2, 1]).all()


def test_the_interval_holds_the_rating_and_narrows_with_more_votes():
    def width(times):
        board = outcomes(2, [(0, 1, A_WINS, 6 * times), (0, 1, B_WINS, 4 * times)])
        result = ratings_compute(board, rounds=300)
        assert (result.lower <= result.rating).all() and (result.rating <= result.upper).all()
        return result.upper[0] - result.lower[0]

    assert width(1) > 2 * width(10)


def test_the_tables_count_battles_and_win_fractions_without_ties():
    board = outcomes(3, [(0, 1, A_WINS, 3), (1, 0, A_WINS, 1), (0, 1, TIE, 4), (1, 2, TIE, 2)])
    result = ratings_compute(board, rounds=0)
    assert result.battles.tolist() == [[0, 8, 0], [8, 0, 2], [0, 2, 0]]
    assert result.win_fraction[0, 1] == 0.75 and result.win_fraction[1, 0] == 0.25
    assert np.isnan(result.win_fraction[1, 2])  # ties only: no decisive battle
    assert result.votes.tolist() == [8, 10, 2]
    assert result.win_rate[0] == pytest.approx((3 + 2) / 8)


def test_no_votes_give_no_ratings_and_no_error():
    empty = Outcomes(wins=np.zeros((0, 0), dtype=int), ties=np.zeros((0, 0), dtype=int))
    assert len(ratings_compute(empty, rounds=10).rating) == 0
