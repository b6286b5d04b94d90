"""``notebooks/quickstart.ipynb`` runs end to end in a real kernel, as a new user would run it."""

from __future__ import annotations

from typing import Any

from nbhelpers import ROOT, text


def test_quickstart_runs_end_to_end(run_notebook: Any) -> None:
    nb = run_notebook(ROOT / "notebooks" / "quickstart.ipynb", timeout=180)

    code = [c for c in nb.cells if c.cell_type == "code"]
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr" and "Error" in o["text"]]
    everything = "\n".join(text(c) for c in code)
    assert "4 dataset(s) across runners" in everything
    assert "completed 3 round(s)" in everything
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the metrics plot
    accuracy = float(everything.split("test rows: ")[1].split()[0])
    assert accuracy > 0.7
    assert text(code[-1]).strip().endswith("stopped>")  # the runners were stopped
