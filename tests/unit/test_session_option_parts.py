"""The session options every training package shares (``packages/_options.py``): undersampling,
seeds, the best model, and how ffnet, glm and gbm validate them."""

from __future__ import annotations

import numpy as np
import pytest

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages import get_package
from jupyter_fed.packages._options import balanced_index, best_index, round_seed

DATA = {"predictors": ["a", "b"], "target": "y"}


def test_balanced_index_is_balanced_and_seeded() -> None:
    y = np.array([0] * 90 + [1] * 10 + [2] * 30)

    rows = balanced_index(y, round_seed(3, 1))

    assert np.bincount(y[rows]).tolist() == [10, 10, 10] and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rows, balanced_index(y, round_seed(3, 1)))
    assert not np.array_equal(rows, balanced_index(y, round_seed(3, 2)))


def test_best_index_picks_the_best_finite_metric_or_the_last() -> None:
    history = [{"loss": 0.7}, {"loss": 0.5}, {"loss": float("nan")}, {"loss": 0.6}]
    assert best_index(history, ("loss", "min")) == 1
    assert best_index(history, ("loss", "max")) == 0
    assert best_index(history, None) == 3
    assert best_index(history, ("roc_auc", "max")) == 3


def test_glm_balances_only_with_the_sgd_solver_and_the_logistic_family() -> None:
    from jupyter_fed.packages.glm.config import parse

    cfg, _ = parse({"balance_train_datasets": True}, DATA)
    assert cfg.resolved_solver == "sgd"
    with pytest.raises(ConfigError, match="use solver 'sgd'"):
        parse({"balance_train_datasets": True, "solver": "newton"}, DATA)
    with pytest.raises(ConfigError, match=r"needs ml_task\.type 'logistic'"):
        parse({"balance_train_datasets": True, "ml_task": {"type": "poisson"}}, DATA)
    with pytest.raises(ConfigError, match="differential_privacy_params"):
        parse({"balance_train_datasets": True,
               "differential_privacy_params": {"epsilon": 1, "max_grad_norm": 1}}, DATA)


@pytest.mark.parametrize("package", ["ffnet", "glm", "gbm"])
def test_save_best_model_accepts_the_references_none(package) -> None:
    config = {"save_best_model": {"metric": None, "mode": "min"}}
    if package == "ffnet":
        config["model"] = {"params": {"input_size": 2, "output_size": 2}}
    plan = get_package(package).load_plan()(config, DATA, 3)
    assert plan.cfg.save_best_model.rule is None
