"""Privacy costs of packages whose steps release only exact aggregates of whole datasets.

They spend no epsilon (so a dataset whose policy requires DP refuses them), but the steps that
measure a model on rows say so: the runner then holds those evaluations to one exact answer per
training round of the session, the limit that closes the loss oracle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jupyter_fed.privacy.accounting import PrivacyCost

__all__ = ["exact_costs", "vertical_costs"]


def exact_costs(step: str, facts: Mapping[str, Any], *, training: Iterable[str],
                measuring: Iterable[str], measures_train: bool) -> dict[str, PrivacyCost]:
    """Role → cost of ``step``: nothing spent; ``trains`` for a training round; ``evaluation``
    on the rows a measuring step scores (``test``, else ``train`` when ``measures_train``)."""
    out: dict[str, PrivacyCost] = {}
    if "train" in facts:
        out["train"] = PrivacyCost(0.0, trains=step in tuple(training))
    if step in tuple(measuring):
        measured = "test" if "test" in facts else ("train" if measures_train else None)
        if measured is not None and measured in facts:
            out[measured] = (out.get(measured) or PrivacyCost(0.0)) + \
                PrivacyCost(0.0, evaluation=True)
    return out


def vertical_costs(facts: Mapping[str, Any], *, trains: bool = False,
                   measured: Iterable[str] = ()) -> dict[str, PrivacyCost]:
    """Role → cost of one party's step of a vertical session (splitnn aside, which may spend
    epsilon): nothing spent on any role the step reads (so a ``require_dp`` dataset refuses it);
    ``trains`` on ``train`` when the step is part of a training round; ``evaluation`` on each role
    in ``measured`` the step has — the rows it measures the model on (metrics, influence, SHAP
    summaries), which the runner holds to one exact answer per training round. The model is
    the parties' own state as much as the request's arrays (``party_model``): the same arrays
    sent twice in a round may measure two models."""
    out = {role: PrivacyCost(0.0) for role in facts}
    if trains and "train" in out:
        out["train"] = PrivacyCost(0.0, trains=True)
    for role in measured:
        if role in out:
            out[role] = out[role] + PrivacyCost(0.0, evaluation=True, party_model=True)
    return out
