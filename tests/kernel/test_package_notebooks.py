"""The glm, linear_inference, pca and gbm template notebooks run end to end in a real kernel,
against the demo runners each starts itself, and reach the pooled results."""

from __future__ import annotations

from typing import Any

import pytest
from nbhelpers import ROOT, text


@pytest.mark.parametrize("name", ["glm", "linear_inference", "pca"])
def test_template_notebook_runs_end_to_end(run_notebook: Any, name: str) -> None:
    nb = run_notebook(ROOT / "notebooks" / f"{name}.ipynb", timeout=180)

    code = [c for c in nb.cells if c.cell_type == "code"]
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o["output_type"] == "error"]
    everything = "\n".join(text(c) for c in code)
    gap = float(everything.split("difference from the pooled ")[1].split(": ")[1].split()[0])
    assert gap < 1e-5
    assert text(code[-1]).strip().endswith("stopped>")  # the runners were stopped


def test_gbm_notebook_trains_with_federate_and_reaches_the_pooled_auc(run_notebook: Any) -> None:
    nb = run_notebook(ROOT / "notebooks" / "gbm.ipynb", timeout=180)

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o["output_type"] == "error"]
    everything = "\n".join(text(c) for c in code)
    gap = float(everything.split("AUC difference from the pooled fit: ")[1].split()[0])
    assert gap < 0.01
    assert "trees; test AUC" in everything
    assert text(code[-1]).strip().endswith("stopped>")


def test_vfl_quickstart_links_explores_trains_and_predicts(run_notebook: Any) -> None:
    """PRL → EDA intersect → SplitNN train → predict, as a builder would run it."""
    nb = run_notebook(ROOT / "notebooks" / "vfl_quickstart.ipynb", timeout=300)

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o["output_type"] == "error"]
    everything = "\n".join(text(c) for c in code)
    assert "n_overlapped_records" in everything
    corr = float(everything.split("corr(x0, x8) across the parties: ")[1].split()[0])
    assert -1.0 <= corr <= 1.0
    scored, auc = everything.split(" linked test people scored; AUC ")
    assert int(scored.split()[-1]) > 0 and float(auc.split()[0]) > 0.75
    assert text(code[-1]).strip().endswith("stopped>")
