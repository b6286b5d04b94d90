"""vfl_glm's pieces without runners: the label party's solve, the encrypted gradient, configs."""

from __future__ import annotations

import numpy as np
import pytest

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.glm import _family
from jupyter_fed.packages.vfl_glm import _solve
from jupyter_fed.packages.vfl_glm.config import parse


def _config(**extra):
    model = {"model": {"a": {"params": {"input_size": 2}},
                       "b": {"params": {"input_size": 1, "output_activation": "sigmoid"}}},
             "prl_session_id": "abc", **extra}
    data = {"a": {"predictors": ["x0", "x1"]},
            "b": {"label_client": True, "predictors": ["x2"], "target": "y"}}
    return model, data


def test_the_subspace_solve_is_the_maximum_likelihood_fit_over_its_columns() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3))
    y = (rng.random(500) < 1 / (1 + np.exp(-(x @ [1.0, -2.0, 0.5] + 0.3)))).astype(float)
    theta, dev = _solve.subspace_newton("logistic", "logit", y, np.zeros(500), np.c_[np.ones(500),
                                                                                      x])
    ref = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12).fit(x, y)
    assert np.allclose(theta, np.r_[ref.intercept_, ref.coef_[0]], atol=1e-6)
    # collinear columns (a party's repeated direction) do not break it
    _theta2, dev2 = _solve.subspace_newton("logistic", "logit", y, np.zeros(500),
                                          np.c_[np.ones(500), x, x[:, :1]])
    assert dev2 == pytest.approx(dev, rel=1e-9)


@pytest.mark.parametrize("size", [0.3, 40.0, 3e5])
def test_the_encrypted_gradient_decrypts_to_the_fixed_point_product(size) -> None:
    from jupyter_fed.packages.eda_intersect import _he

    rng = np.random.default_rng(1)
    n, d = 3000, 5
    z = rng.normal(size=(n, d)) * 3
    score = rng.normal(size=n) * size  # large scores: the bits adapt so totals still fit
    xb, sb = _solve.x_scale_bits(z), _solve.residual_bits(score)
    assert np.abs(_solve.to_fixed(z, xb)).max() < 2 ** _solve.X_BITS
    key = _he.new_context()
    chunks = _he.encrypt_fields(key, _solve.to_fixed(z, xb))
    result = _he.evaluate(_he.public_context(key), chunks, d, _solve.to_fixed(score, sb)[:, None],
                          np.zeros((1, d), dtype=np.int64))
    total = _he.decrypt_sums(_he.secret_bytes(key), result, d)[0] / 2.0 ** (xb + sb)
    exact = z.T @ score
    assert np.abs(total - exact).max() < n * (2.0 ** -xb * np.abs(score).max()
                                              + 2.0 ** -sb * np.abs(z).max())


def test_configs_follow_the_reference_and_name_bad_fields() -> None:
    cfg, data = parse(*_config())
    assert cfg.ml_task.link == "logit" and data.label == "b"
    for change, field in [
            ({"ml_task": {"type": "poisson", "params": {}}},
             "model_config.model.b.params.output_activation"),
            ({"ml_task": {"type": "logistic", "params": {"alpha": 0.1}}}, "model_config"),
            ({"strategy": {"name": "FedAvg"}}, "model_config.strategy.name"),
            ({"tol": 2}, "model_config.tol")]:
        with pytest.raises(ConfigError) as err:
            parse(*_config(**change))
        assert any(d["field"].startswith(field) for d in err.value.details), err.value.details


def test_iai_glm_is_routed_to_vfl_glm_for_vertical_sessions() -> None:
    from jupyter_fed.packages import get_package

    assert get_package("iai_glm").name == "glm"  # the horizontal one, as before
    assert get_package("vfl_glm").plan.endswith("VflGlmPlan")


@pytest.mark.parametrize("family", ["normal", "poisson", "gamma"])
def test_the_family_link_pieces_reach_the_pooled_fit_by_subspace_rounds(family) -> None:
    """The rounds of the plan, in numpy: a label block solved exactly, a passive block moved
    along its preconditioned gradient and last steps."""
    rng = np.random.default_rng(2)
    n = 800
    xa, xb = rng.normal(size=(n, 3)), rng.normal(size=(n, 2))
    xa[:, 0] += 0.6 * xb[:, 0]  # correlated across parties
    eta = 0.3 + xa @ [0.2, -0.1, 0.15] + xb @ [0.1, 0.2]
    link = {"normal": "identity", "poisson": "log", "gamma": "log"}[family]
    mu = _family.inverse_link(link, eta)
    y = {"normal": lambda: mu + rng.normal(size=n), "poisson": lambda: rng.poisson(mu) + 0.0,
         "gamma": lambda: rng.gamma(2.0, mu / 2.0)}[family]()
    zl = np.c_[np.ones(n), xb]
    full, _ = _solve.subspace_newton(family, link, y, np.zeros(n) + (np.log(y.mean()) if link ==
                                                                       "log" else 0.0),
                                     np.c_[zl, xa])
    bl, bp = np.zeros(3), np.zeros(3)
    bl[0] = np.log(y.mean()) if link == "log" else 0.0
    precondition = np.linalg.inv(xa.T @ xa / n)
    steps: list[np.ndarray] = []
    images, directions = np.zeros((n, 0)), np.zeros((3, 0))
    for _ in range(15):
        theta, _ = _solve.subspace_newton(family, link, y, zl @ bl + xa @ bp, np.c_[zl, images])
        bl += theta[:3]
        if directions.shape[1]:
            move = directions @ theta[3:]
            bp += move
            steps = [move, *steps][:3]
        e = zl @ bl + xa @ bp
        s, _w = _family.score_weights(family, link, y, e, _family.inverse_link(link, e))
        directions = np.c_[precondition @ (xa.T @ s), *steps] if steps else \
            (precondition @ (xa.T @ s))[:, None]
        images = xa @ directions
    start = np.log(y.mean()) if link == "log" else 0.0
    assert np.allclose(np.r_[bl[0] - start, bl[1:], bp], np.r_[full[0], full[1:3], full[3:]],
                       atol=1e-6)
