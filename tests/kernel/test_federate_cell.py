"""Reading a ``%%federate`` cell, and the magics in an in-process shell (no kernel, no runners)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.error import UsageError

from jupyter_fed.magics import CellConfigError, SessionSpec

CATALOG = [{"runner": r, "name": n, "columns": cols} for r, n, cols in [
    ("a", "train_a", ["x0", "x1", "id2", "y"]), ("b", "train_b", ["x1", "x0", "y"]),
    ("a", "test", ["x0", "x1", "y"]), ("b", "test", ["x0", "x1", "y"])]]


def test_flat_body_splits_data_and_model_config() -> None:
    spec = SessionSpec.from_cell("ffnet", "target: y\npredictors: [x0, x1]\nbatch_size: 8\n"
                                 "model: {params: {output_size: 2}}\nrounds: 4\n",
                                 datasets="train_a,train_b", rounds=None)

    notes = spec.fill_defaults(CATALOG)

    assert spec.data_config == {"target": "y", "predictors": ["x0", "x1"]}
    assert spec.model_config == {"batch_size": 8,
                                 "model": {"params": {"output_size": 2, "input_size": 2}}}
    assert spec.rounds == 4 and notes == []


def test_sections_body_in_json_and_options_win() -> None:
    body = '{"model_config": {"seed": 1}, "data_config": {"target": "y"}, "rounds": 9}'

    spec = SessionSpec.from_cell("ffnet", body, datasets="train_a", rounds=2)

    assert (spec.model_config, spec.data_config, spec.rounds) == ({"seed": 1}, {"target": "y"}, 2)


def test_missing_predictors_default_to_the_common_columns_except_the_target() -> None:
    spec = SessionSpec.from_cell("ffnet", "target: y\nmodel: {params: {output_size: 2}}",
                                 datasets="train_a,train_b")

    notes = spec.fill_defaults(CATALOG)

    assert spec.data_config["predictors"] == ["x0", "x1"]  # id2 is not at silo b
    assert spec.model_config["model"]["params"]["input_size"] == 2
    assert len(notes) == 1 and "2 columns common" in notes[0]


def test_tests_pair_by_position_or_one_for_all() -> None:
    one = SessionSpec("ffnet", ["train_a", "b/train_b"], ["test"]).tasks()
    paired = SessionSpec("ffnet", ["train_a", "train_b"], ["a/test", "b/test"]).tasks()

    assert [(t["runner"], t["datasets"]) for t in one] == [
        (None, {"train": "train_a", "test": "test"}), ("b", {"train": "train_b", "test": "test"})]
    assert [t["datasets"]["test"] for t in paired] == ["test", "test"]


@pytest.mark.parametrize(("body", "options", "message"), [
    ("target: [", {}, "not valid YAML: line 1"),
    ("{bad json", {}, "not valid JSON: line 1"),
    ("- a\n- b", {}, "must be a mapping of settings"),
    ("model_config: {}\nseed: 1", {}, "unknown top-level key 'seed'"),
    ("target: y", {"test_datasets": "t1,t2,t3"}, "--test-datasets lists 3 datasets for 2"),
    ("target: y", {"min_clients": 3}, "--min-clients is 3 but 2 dataset(s) join"),
    ("rounds: many", {}, "rounds must be an integer"),
])
def test_bad_cells_name_what_to_fix(body: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(CellConfigError) as err:
        SessionSpec.from_cell("ffnet", body, datasets="train_a,train_b", **options).check()

    assert message in err.value.message and err.value.hint


def test_unknown_dataset_lists_the_known_ones() -> None:
    spec = SessionSpec("ffnet", ["train_c"])

    with pytest.raises(CellConfigError, match="no dataset 'train_c' on any runner") as err:
        spec.check_datasets(CATALOG)

    assert "test, train_a, train_b" in err.value.hint


def test_rendered_cell_reads_back_to_the_same_spec() -> None:
    spec = SessionSpec("ffnet", ["train_a", "train_b"], ["test"], rounds=3, name="my run",
                       model_config={"strategy": {"name": "FedAdam", "params": {"eta": 0.1}},
                                     "model": {"params": {"input_size": 2, "output_size": 2}}},
                       data_config={"target": "y", "predictors": ["x0", "x1"]})

    line, body = spec.to_cell("s").split("\n", 1)
    again = SessionSpec.from_cell("ffnet", body, datasets="train_a,train_b", test_datasets="test",
                                  rounds=3, name="my run")
    again.fill_defaults()

    assert line == ("%%federate ffnet --datasets train_a,train_b --test-datasets test --rounds 3 "
                    "--name 'my run' -o s")
    assert "input_size" not in body  # filled in again from the predictors
    assert again == spec


# the magics in an in-process shell ----------------------------------------------------------------
@pytest.fixture()
def ip() -> Iterator[Any]:
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "jupyter_fed")
    yield shell
    shell.run_line_magic("unload_ext", "jupyter_fed")
    from jupyter_fed.magics._client import reset_client

    reset_client()


def test_refusals_reach_ipython_as_plain_usage_errors(ip: Any) -> None:
    ip.user_ns["not_a_client"] = 42

    with pytest.raises(UsageError) as err:
        ip.run_line_magic("fed", "use not_a_client")

    assert type(err.value) is UsageError  # IPython shows only this exact type without a traceback
    assert "int is not a jupyter_fed Client" in str(err.value)
    assert type(err.value.__cause__).__name__ == "FedUsageError"


def test_federate_checks_the_cell_before_contacting_anything(ip: Any) -> None:
    with pytest.raises(UsageError, match="no training datasets given"):
        ip.run_cell_magic("federate", "ffnet", "target: y")
    with pytest.raises(UsageError, match="-o '1x' is not a valid variable name"):
        ip.run_cell_magic("federate", "ffnet -o 1x --datasets a", "target: y")


def test_join_says_it_is_not_available(ip: Any) -> None:
    class Client:
        def datasets(self) -> None: ...
        def runners(self) -> None: ...
        def create_fl_session(self) -> None: ...
        def session(self) -> None: ...

    ip.user_ns["c"] = Client()
    ip.run_line_magic("fed", "use c")

    with pytest.raises(UsageError, match="%fed join is not available in this version"):
        ip.run_line_magic("fed", "join abc")


def test_unload_removes_the_magics(ip: Any) -> None:
    ip.run_line_magic("unload_ext", "jupyter_fed")

    assert "fed" not in ip.magics_manager.magics["line"]
    assert "federate" not in ip.magics_manager.magics["cell"]
    ip.run_line_magic("load_ext", "jupyter_fed")  # for the fixture's own unload
