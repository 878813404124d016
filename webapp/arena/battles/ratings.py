"""Bradley-Terry ratings on the Elo scale, with bootstrap intervals (numpy only, no Django).

The model is FastChat's ``compute_mle_elo``: model i beats model j with probability
``1 / (1 + 10 ** ((R_j - R_i) / 400))``, the ratings R maximise the likelihood of the
votes, a tie (``tie`` or ``tie (bothbad)``) counts as half a win for each side, and the
ratings are centred on 1000 (FastChat starts every rating at 0 on the natural scale and its
gradient keeps their sum there; we make that explicit). Which side a model sat on does not
matter: there is no first-mover term.

Everything works on counts per pair of models, never on single battles: a fit is Newton's
method on a models x models matrix, and a bootstrap round (battles drawn again with
replacement, as many as there were) is one multinomial draw of those counts; all rounds are
fitted at once as one stack of matrices.

A tiny ridge term (``RIDGE``: a Gaussian prior on the natural-scale ratings, as strong as
a hundred-thousandth of a battle) keeps the ratings finite when a model won or lost every
battle, where the exact maximum is at infinity (5 wins out of 5 put two models about 2,000
points apart). Elsewhere it is negligible: after 4 votes between two models it moves
their gap by a thousandth of a point, and less with every vote.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SCALE, BASE, ANCHOR = 400.0, 10.0, 1000.0
RIDGE = 1e-5
MAX_STEP = 2.0  # natural-scale units per Newton step: no overshoot when a model is undefeated
TOLERANCE, MAX_ITERATIONS = 1e-9, 100
A_WINS, B_WINS, TIE = 0, 1, 2
POINTS = SCALE / math.log(BASE)  # Elo points per natural-scale unit


@dataclass(frozen=True)
class Outcomes:
    """Battles between each pair: ``wins[i, j]`` times i beat j, ``ties[i, j]`` (symmetric)."""

    wins: np.ndarray
    ties: np.ndarray

    @property
    def battles(self) -> np.ndarray:
        return self.wins + self.wins.T + self.ties

    @property
    def scores(self) -> np.ndarray:
        """Wins with ties as halves: what the likelihood reads."""
        return self.wins + self.ties / 2


@dataclass(frozen=True)
class Ratings:
    """Per model, in the order of the counts: best first is the caller's to sort."""

    rating: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    rank: np.ndarray
    votes: np.ndarray
    win_rate: np.ndarray
    win_fraction: np.ndarray  # [i, j]: share of i and j's decisive battles that i won; nan if none
    battles: np.ndarray  # [i, j]: battles between i and j, ties included


def outcomes_count(
    *,
    size: int,
    a: np.ndarray,
    b: np.ndarray,
    outcome: np.ndarray,
    count: np.ndarray | None = None,
) -> Outcomes:
    """Count battles given as index arrays: sides ``a``, ``b``, ``outcome`` (A_WINS, B_WINS or
    TIE) and, when rows are already grouped, how many battles each row stands for."""
    a, b, outcome = (np.asarray(x, dtype=np.intp) for x in (a, b, outcome))
    count = np.ones(len(a), dtype=np.int64) if count is None else np.asarray(count, np.int64)
    wins = np.zeros((size, size), dtype=np.int64)
    ties = np.zeros((size, size), dtype=np.int64)
    for won, winner, loser in ((outcome == A_WINS, a, b), (outcome == B_WINS, b, a)):
        np.add.at(wins, (winner[won], loser[won]), count[won])
    tied = outcome == TIE
    np.add.at(ties, (a[tied], b[tied]), count[tied])
    np.add.at(ties, (b[tied], a[tied]), count[tied])
    return Outcomes(wins=wins, ties=ties)


def ratings_fit(scores: np.ndarray) -> np.ndarray:
    """Return the Elo-scale ratings that maximise the likelihood of ``scores``.

    ``scores[..., i, j]`` is how often i beat j (ties as halves); leading axes are
    independent fits (bootstrap rounds), solved together.
    """
    scores = np.asarray(scores, dtype=np.float64)
    battles = scores + np.swapaxes(scores, -1, -2)
    won = scores.sum(axis=-1)
    size = scores.shape[-1]
    x = np.zeros(scores.shape[:-1])
    if size == 0:
        return x
    ridge = RIDGE * np.eye(size)
    for _ in range(MAX_ITERATIONS):
        p = 1.0 / (1.0 + np.exp(x[..., None, :] - x[..., :, None]))  # p[i, j]: i beats j
        gradient = won - (battles * p).sum(axis=-1) - RIDGE * x
        weight = battles * p * (1.0 - p)
        # The negated Hessian: a graph Laplacian of the weights, plus the ridge.
        curvature = np.einsum("...ij,ij->...ij", -weight, 1 - np.eye(size))
        curvature = curvature + np.einsum("...i,ij->...ij", weight.sum(axis=-1), np.eye(size))
        step = np.linalg.solve(curvature + ridge, gradient[..., None])[..., 0]
        # Shifting every rating alike changes no probability: keep the mean at 0, so that
        # rounding noise along that direction (where only the ridge curves) cannot build up.
        step -= step.mean(axis=-1, keepdims=True)
        largest = np.abs(step).max(axis=-1, keepdims=True)
        step *= np.minimum(1.0, MAX_STEP / np.maximum(largest, 1e-300))
        x = x + step
        if largest.max() < TOLERANCE:
            break
    return ANCHOR + POINTS * x


def bootstrap_scores(outcomes: Outcomes, *, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``rounds`` resamples of the battles (with replacement), as stacked score matrices."""
    upper = np.triu(np.ones_like(outcomes.ties, dtype=bool), k=1)
    i, j = np.nonzero((outcomes.wins > 0) | (outcomes.wins.T > 0) | (outcomes.ties > 0))
    keep = upper[i, j]
    i, j = i[keep], j[keep]
    # One cell per pair and result: i won, j won, tied.
    counts = np.concatenate([outcomes.wins[i, j], outcomes.wins[j, i], outcomes.ties[i, j]])
    total = int(counts.sum())
    size = outcomes.ties.shape[0]
    scores = np.zeros((rounds, size, size))
    if total == 0:
        return scores
    draws = rng.multinomial(total, counts / total, size=rounds).astype(np.float64)
    cells = len(i)
    won_i, won_j, tied = draws[:, :cells], draws[:, cells : 2 * cells], draws[:, 2 * cells :]
    scores[:, i, j] = won_i + tied / 2
    scores[:, j, i] = won_j + tied / 2
    return scores


def ranks(*, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """One plus the number of models whose lower bound is above this model's upper bound."""
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)


def ratings_compute(outcomes: Outcomes, *, rounds: int, seed: int = 0) -> Ratings:
    """Fit the ratings, their 95% intervals from ``rounds`` bootstrap rounds, and the tables."""
    rating = ratings_fit(outcomes.scores)
    if rounds:
        rng = np.random.default_rng(seed)
        resampled = ratings_fit(bootstrap_scores(outcomes, rounds=rounds, rng=rng))
        lower, upper = np.percentile(resampled, [2.5, 97.5], axis=0)
    else:
        lower, upper = rating.copy(), rating.copy()
    battles = outcomes.battles
    votes = battles.sum(axis=1)
    decisive = outcomes.wins + outcomes.wins.T
    with np.errstate(invalid="ignore", divide="ignore"):
        win_rate = np.where(votes > 0, outcomes.scores.sum(axis=1) / np.maximum(votes, 1), np.nan)
        win_fraction = np.where(decisive > 0, outcomes.wins / np.maximum(decisive, 1), np.nan)
    return Ratings(
        rating=rating,
        lower=lower,
        upper=upper,
        rank=ranks(lower=lower, upper=upper),
        votes=votes,
        win_rate=win_rate,
        win_fraction=win_fraction,
        battles=battles,
    )
