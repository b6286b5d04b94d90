"""SplitNN's pure parts: config errors by field, the shared batch order, DP calibration, options."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jupyter_fed.errors import ConfigError
from jupyter_fed.packages.splitnn import _dp
from jupyter_fed.packages.splitnn._batches import chunk_batches, num_chunks
from jupyter_fed.packages.splitnn.config import parse
from jupyter_fed.packages.splitnn.plan import SplitNNPlan


def _configs() -> tuple[dict, dict]:
    model = {"model": {"feature_models": {"a": {"params": {"input_size": 2, "output_size": 3}},
                                          "b": {"params": {"input_size": 1, "output_size": 3}}},
                       "label_model": {"params": {"output_size": 2}}},
             "prl_session_id": "abc123"}
    data = {"a": {"predictors": ["x0", "x1"]},
            "b": {"label_client": True, "predictors": ["x2"], "target": "y"}}
    return model, data


def test_the_batches_of_an_epoch_cover_every_row_once_in_the_same_order_everywhere() -> None:
    n, bs, k = 1003, 64, 5
    chunks = [chunk_batches(9, 2, c, n, bs, k) for c in range(num_chunks(n, bs, k))]

    rows = np.concatenate([b for chunk in chunks for b in chunk])
    assert sorted(rows.tolist()) == list(range(n))
    assert np.array_equal(rows, np.concatenate(
        [b for c in range(num_chunks(n, bs, k)) for b in chunk_batches(9, 2, c, n, bs, k)]))
    assert not np.array_equal(rows, np.concatenate(chunk_batches(9, 3, 0, n, bs, 10**6)))


def test_input_sizes_and_feature_models_are_checked_by_field() -> None:
    model, data = _configs()
    model["model"]["feature_models"]["a"]["params"]["input_size"] = 5
    nets = model["model"]["feature_models"]
    nets["c"] = nets.pop("b")

    with pytest.raises(ConfigError) as err:
        parse(model, data)

    fields = {d["field"] for d in err.value.details}
    assert fields == {"model_config.model.feature_models.a.params.input_size",
                      "model_config.model.feature_models.b",
                      "model_config.model.feature_models.c"}


def test_task_options_are_checked_and_the_predicting_label_party_needs_a_path() -> None:
    model, data = _configs()
    plan = SplitNNPlan({**model, "vfl_mode": "predict", "training_session_id": "t1"}, data)

    assert [p.field for p in plan.check_options("b", {})] == ["options[b].storage_path"]
    assert plan.check_options("a", {"batch_size": 32}) == []
    assert plan.check_options("a", {"batch_size": 0})[0].field == "options[a].batch_size"
    assert plan.check_options("a", {"colour": "red"})[0].field == "options[a].colour"
    assert plan.references() == {"model_config.prl_session_id": ("abc123", ("prl",)),
                                 "model_config.training_session_id": ("t1", ("splitnn",))}


def test_the_noise_multiplier_meets_the_budget_over_all_releases() -> None:
    sigma = _dp.noise_multiplier(2.0, 1e-6, 5)
    rho = 5 / (2 * sigma**2)

    assert rho + 2 * math.sqrt(rho * math.log(1e6)) == pytest.approx(2.0)
    clipped = _dp.privatize(np.full((4, 3), 10.0), 1.0, 0.0, np.random.default_rng(0))
    assert np.allclose(np.linalg.norm(clipped, axis=1), 1.0)


def test_each_epoch_charges_its_share_and_evaluations_are_declared() -> None:
    from jupyter_fed.privacy.accounting import DatasetFacts

    model, data = _configs()
    model["differential_privacy_params"] = {"epsilon": 3.0, "delta": 3e-7}
    facts = {"train": DatasetFacts(1000, 1e-6), "test": DatasetFacts(500, 1e-6)}
    params = {"model_config": model, "data_config": data, "num_rounds": 3}

    first = _dp.privacy_cost("forward", {**params, "new_epoch": True, "test": True,
                                         "forward": [1, 0]}, facts)
    later = _dp.privacy_cost("forward", {**params, "new_epoch": False, "forward": [1, 1]}, facts)
    head = _dp.privacy_cost("head", {**params, "new_epoch": True, "eval": True,
                                     "train": [1, 0]}, facts)
    only = _dp.privacy_cost("head", {**params, "new_epoch": True, "eval": True}, facts)

    assert first["train"].epsilon == pytest.approx(1.0) and first["train"].trains
    assert first["test"].epsilon == pytest.approx(0.75)  # 4 evaluated models
    assert later["train"].epsilon == 0.0
    assert head["test"].evaluation and head["train"].epsilon == pytest.approx(1.0)
    assert head["train"].trains and not head["train"].evaluation  # DP: no training loss
    assert only["test"].evaluation and not only["train"].trains  # measuring is no training
    assert _dp.privacy_cost("start", params, facts)["train"].epsilon == 0.0


def test_a_workers_live_networks_are_used_only_while_the_file_is_the_one_it_wrote(tmp_path
                                                                                   ) -> None:
    import os

    from jupyter_fed.packages.base import StepContext
    from jupyter_fed.packages.splitnn._party import PartyFile

    ctx = StepContext(task_id="t", round=1, cache_dir=tmp_path, principal="alice",
                      session_id="sess1")
    pf = PartyFile(ctx, "a")
    nets = (object(), None, object())
    with pf.locked():
        pf.write({"w": np.zeros(3, np.float32)}, {"exchange": 1})
        pf.remember(nets, {"exchange": 1}, {})
        live = pf.live()
        assert live is not None and live.nets is nets and live.meta["exchange"] == 1

        # another worker (or a retry elsewhere) moved the party on: the file is read again
        os.utime(pf.path, ns=(1, 1))
        assert pf.live() is None
        arrays, meta = pf.read()
        assert meta == {"exchange": 1} and arrays["w"].shape == (3,)

        pf.write({"w": np.ones(3, np.float32)}, {"exchange": 2})
        pf.remember(nets, {"exchange": 2}, {})
        pf.forget()  # a step failed halfway
        assert pf.live() is None
