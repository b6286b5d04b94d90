"""``notebooks/simulation.ipynb`` runs end to end in a real kernel with three simulated clients:
a skewed and an IID simulation from a cell and the SDK, then the same session on real runners
holding the same partitions, which trains the identical model."""

from __future__ import annotations

from typing import Any

from nbhelpers import ROOT, text

NOTEBOOK = ROOT / "notebooks" / "simulation.ipynb"


def test_simulation_notebook_simulates_then_moves_to_runners(run_notebook: Any) -> None:
    # Execute
    nb = run_notebook(NOTEBOOK, timeout=400, env={"JUPYTER_FED_SIM_CLIENTS": "3"})

    # Assert
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o["output_type"] == "error"]
    everything = "\n".join(text(c) for c in code)
    assert "3 simulated client(s), partition dirichlet:0.5" in everything
    assert "3 clients (dirichlet:0.5) on the local engine" in everything
    assert "simulated and real models identical: True" in everything
    assert text(code[-1]).strip().endswith("runners stopped")
