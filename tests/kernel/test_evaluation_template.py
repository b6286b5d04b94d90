"""``notebooks/evaluation_template.ipynb`` runs end to end in a real kernel, once with a generated
provider whose columns carry signal about the consumer's label and once with one whose columns are
noise, and its summary tells them apart."""

from __future__ import annotations

import re
from typing import Any

import pytest
from nbhelpers import ROOT, text

NOTEBOOK = ROOT / "notebooks" / "evaluation_template.ipynb"
VERDICT = re.compile(r"Lift in test ROC AUC: ([+-]\d\.\d{3}) \(95% CI ([+-]\d\.\d{3}) to "
                     r"([+-]\d\.\d{3})\) — (the provider's columns add signal|no measurable lift)")
SHARE = re.compile(r"The provider's share of influence: (-?\d+)%")


@pytest.mark.parametrize("provider", ["signal", "noise"])
def test_evaluation_template_finds_the_lift_only_when_the_provider_carries_signal(
        run_notebook: Any, provider: str) -> None:
    # Execute
    nb = run_notebook(NOTEBOOK, timeout=300, env={"JUPYTER_FED_EVAL_PROVIDER": provider})

    # Assert
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o["output_type"] == "error"]
    everything = "\n".join(text(c) for c in code)
    assert f"<EvaluationDemo ({provider} provider)" in everything  # this tree's demo, this provider
    assert "1,400 of the consumer's 2,000 training people (70%)" in everything
    found = VERDICT.findall(text(code[-2]))
    assert len(found) == 1, text(code[-2])
    lift, low, high, verdict = found[0]
    lift_, low_, high_ = float(lift), float(low), float(high)
    assert low_ <= lift_ <= high_
    share = float(SHARE.findall(text(code[-2]))[0]) / 100
    if provider == "signal":
        assert low_ > 0 and lift_ > 0.05
        assert verdict == "the provider's columns add signal"
        assert share > 0.3  # the provider's columns carry much of what the model knows
    else:
        assert low_ <= 0 and lift_ < 0.02
        assert verdict == "no measurable lift"
        assert share < 0.15  # noise columns: next to no influence
    summary = next(o for o in code[-2].outputs if o["output_type"] == "display_data")
    assert "text/html" in summary["data"]  # the table
    assert any("image/png" in o.get("data", {}) for o in code[-2].outputs)  # the figure
    assert text(code[-1]).strip().endswith("stopped>")  # the runners were stopped


def test_provider_form_writes_the_template_variables() -> None:
    from jupyter_fed.widgets import ProviderForm

    # Prepare
    namespace: dict[str, Any] = {}
    form = ProviderForm(PROVIDER_RUNNER="provider", PROVIDER_ID_COLUMNS=["person_id"])
    form.on_change(namespace.update)

    # Execute
    untouched = dict(form.values)
    form.boxes["PROVIDER_ID_COLUMNS"].value = " email, phone ,"
    form.boxes["PROVIDER_RUNNER"].value = " acme "

    # Assert
    assert untouched == {"PROVIDER_RUNNER": "provider", "PROVIDER_ID_COLUMNS": ["person_id"]}
    assert namespace == {"PROVIDER_RUNNER": "acme", "PROVIDER_ID_COLUMNS": ["email", "phone"]}
