"""The Shapley maths of dataset influence: exact values, the Monte-Carlo estimate and its limits."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from jupyter_fed.packages._valuation import ImportanceParams, shapley, subsample_rows


def _game(k: int, seed: int = 0):
    """A loss with pairwise interactions: v(S) = L(∅) - L(S) is not additive."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=k)
    pair = rng.normal(scale=0.3, size=(k, k))

    def loss(s: frozenset[int]) -> float:
        idx = sorted(s)
        return 10.0 - float(w[idx].sum()) - float(sum(pair[i, j] for i in idx for j in idx
                                                      if i < j))
    return loss


def _brute(k: int, loss) -> np.ndarray:
    """Shapley values by averaging marginal gains over every ordering."""
    phi = np.zeros(k)
    orders = list(itertools.permutations(range(k)))
    for order in orders:
        seen: frozenset[int] = frozenset()
        for i in order:
            phi[i] += loss(seen) - loss(seen | {i})
            seen = seen | {i}
    return phi / len(orders)


def test_exact_values_match_the_definition_and_add_up_to_the_gain() -> None:
    loss = _game(4)
    found = shapley(list("abcd"), loss)

    assert found.method == "exact" and found.evaluations == 16
    assert list(found.values.values()) == pytest.approx(_brute(4, loss).tolist())
    assert sum(found.values.values()) == pytest.approx(found.baseline_loss - found.loss)


def test_beyond_six_parties_the_monte_carlo_estimate_is_close() -> None:
    k = 8
    rng = np.random.default_rng(1)
    w = np.r_[rng.uniform(1, 2, 3), np.zeros(k - 3)]  # three informative parties, five useless

    def loss(s: frozenset[int]) -> float:
        return 10.0 - float(w[sorted(s)].sum()) - (0.5 if {0, 1} <= s else 0.0)

    found = shapley([f"p{i}" for i in range(k)], loss, rel_thresh=0.01, seed=3)

    assert found.method == "monte_carlo"
    exact = w.copy()
    exact[:2] += 0.25  # the interaction is split between its two parties
    assert list(found.values.values()) == pytest.approx(exact.tolist(), abs=0.1)
    assert found.evaluations < 2 ** k  # stopped by rel_thresh, long before every coalition


def test_max_eval_len_bounds_the_work_and_switches_to_sampling() -> None:
    calls = []

    def loss(s: frozenset[int]) -> float:
        calls.append(s)
        return 5.0 - len(s)

    found = shapley(list("abcd"), loss, max_eval_len=10)

    assert found.method == "monte_carlo" and found.evaluations <= 10
    assert len(set(calls)) == len(calls) <= 10  # each coalition computed once
    assert all(math.isclose(v, 1.0) for v in found.values.values())


def test_a_tighter_rel_thresh_samples_more() -> None:
    loss = _game(9, seed=4)
    loose = shapley([str(i) for i in range(9)], loss, rel_thresh=0.2, seed=1)
    tight = shapley([str(i) for i in range(9)], loss, rel_thresh=0.001, seed=1)

    assert tight.evaluations > loose.evaluations


def test_subsample_rows_is_the_same_draw_everywhere_and_within_range() -> None:
    a = subsample_rows(1000, ImportanceParams(subsample=0.05, random_seed=7))
    b = subsample_rows(1000, ImportanceParams(subsample=0.05, random_seed=7))

    assert np.array_equal(a, b) and len(a) == 50 and len(set(a.tolist())) == 50
    assert len(subsample_rows(30, ImportanceParams())) == 30  # never more rows than there are
