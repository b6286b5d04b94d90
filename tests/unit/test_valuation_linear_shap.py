"""vfl_glm's closed-form SHAP values are what shap's own explainers compute for a linear
predictor, and splitnn's two-pass explainer gives what one pass would."""

from __future__ import annotations

import numpy as np

from jupyter_fed.packages import _shap
from jupyter_fed.packages._valuation import ImportanceParams


def test_closed_form_equals_shap_linear_explainer() -> None:
    import shap

    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 4)) * [1.0, 2.0, 0.5, 3.0] + [0.0, 1.0, -2.0, 5.0]
    z = (x - x.mean(0)) / x.std(0)  # as a vfl_glm party standardises its columns
    beta = np.array([0.7, -1.2, 0.0, 0.3])

    explainer = shap.LinearExplainer((beta, 0.0), shap.maskers.Independent(z, max_samples=len(z)))

    assert np.allclose(explainer.shap_values(z[:50]), z[:50] * beta)


def test_two_passes_give_the_one_pass_values() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 5))
    w = np.array([2.0, 0.0, -1.0, 0.0, 0.5])
    params = ImportanceParams(random_seed=11)
    background = x[_shap.background_rows(len(x), params)]

    def model(row: int, z: np.ndarray) -> np.ndarray:
        return np.tanh(z @ w)

    direct = _shap.explain(x[:15], background, model, params)
    inputs, owner, digest = _shap.record(x[:15], background, 1, params)
    replay = _shap.Replay(np.tanh(inputs @ w)[:, None], owner, digest)
    twice = _shap.explain(x[:15], background, replay, params)
    replay.check()

    assert np.array_equal(direct, twice)
    assert np.abs(direct[:, [1, 3]]).max() == 0.0  # columns the model ignores get nothing
