"""Reading a ``%%federate eda`` / ``%%federate stats`` cell (no kernel, no runners)."""

from __future__ import annotations

import pytest

from jupyter_fed.magics import AnalyticsSpec, CellConfigError


def test_eda_flat_body_gives_model_config_and_columns_for_every_dataset() -> None:
    spec = AnalyticsSpec.from_cell("eda", "epsilon: 0.5\nbins: 8\ncolumns: [x0, y]\nname: look",
                                   datasets="train_a,b/train_b")

    assert spec.model_config == {"epsilon": 0.5, "bins": 8}
    assert spec.data_config == {"train_a": ["x0", "y"], "train_b": ["x0", "y"]}
    assert (spec.datasets, spec.name) == (["train_a", "b/train_b"], "look")


def test_eda_data_config_section_names_the_datasets() -> None:
    spec = AnalyticsSpec.from_cell("eda", '{"data_config": {"train_a": [1, 2], "train_b": []}}')

    assert spec.datasets == ["train_a", "train_b"]
    assert spec.data_config == {"train_a": [1, 2], "train_b": []}
    assert spec.model_config == {}


def test_stats_body_splits_contract_and_query() -> None:
    body = ("contract: |\n  COUNT(x0) >= 100\nreceive_action: allow\ncolumns: [x0, y]\n"
            "filter: x0 > 0\ndata_config:\n  train_b: {columns: [x1]}\n")

    spec = AnalyticsSpec.from_cell("stats", body, datasets="train_a,train_b")

    assert spec.model_config == {"contract": "COUNT(x0) >= 100\n", "receive_action": "allow"}
    assert spec.data_config == {"train_b": {"columns": ["x1"]}, "columns": ["x0", "y"],
                                "filter": "x0 > 0"}


@pytest.mark.parametrize(("package", "body", "datasets", "message"), [
    ("eda", "epsilon: 1\nbinz: 3", "a", "unknown key 'binz' for %%federate eda"),
    ("eda", "columns: [x0]\ndata_config: {a: [x1]}", "a", "either columns: (for every dataset)"),
    ("eda", "columns: x0", "a", "columns must be a list"),
    ("eda", "data_config: [a, b]", "a", "data_config must be a mapping"),
    ("stats", "contract: 'COUNT(x0) > 1'", None, "no datasets given"),
])
def test_bad_analytics_cells_name_what_to_fix(package: str, body: str, datasets: str | None,
                                              message: str) -> None:
    with pytest.raises(CellConfigError) as err:
        AnalyticsSpec.from_cell(package, body, datasets=datasets).check()

    assert message in err.value.message and err.value.hint
