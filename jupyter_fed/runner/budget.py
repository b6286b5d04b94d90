"""Charging a step before it runs: its declared (epsilon, delta), its evaluations, the policy.

The package declares what a step costs on each dataset role (``PackageSpec.privacy_cost``) from
the request's parameters and public facts about each dataset (row count, delta cap); the runner
checks that against the policy, decides whether each evaluation is exact or charged, and debits
everything in one transaction. The step then receives, in ``ctx.policy[role]["grant"]``, what it
may spend — and must keep to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from jupyter_fed.errors import PermissionDenied
from jupyter_fed.packages.registry import PackageSpec
from jupyter_fed.privacy.accounting import DatasetFacts, PrivacyCost
from jupyter_fed.runner.policy import Charge, DatasetPolicy, Evaluation, Ledger, budget_group
from jupyter_fed.runner.storage import DataPath
from jupyter_fed.wire import DatasetInfo, TaskSpec

__all__ = ["charge_step"]


def charge_step(ledger: Ledger, spec: TaskSpec, package: PackageSpec,
                handles: dict[str, tuple[DatasetInfo, DataPath]], policies: dict[str, DatasetPolicy],
                principal: str, tensors: bytes | None, *, task: str | None = None
                ) -> dict[str, dict[str, Any]]:
    """Check and debit a step's privacy cost; returns each role's policy with its ``grant``.

    Raises ``PermissionDenied`` (or ``PrivacyBudgetExceeded``) before any row is read when the
    policy or the budget does not allow the step; nothing is debited then. ``task`` is the key a
    retry of the same step is recognised by (the runner's per-principal task key).
    """
    facts = {role: DatasetFacts(info.num_rows, policies[role].delta_cap(info.num_rows),
                                policies[role].exact_only)
             for role, (info, _path) in handles.items()}
    costs = package.privacy_cost_of(spec.step, spec.params, facts)
    model = hashlib.sha256(tensors or b"").hexdigest()[:32]
    charges, evaluations = [], []
    for role, (info, path) in handles.items():
        policy, cost = policies[role], costs.get(role, PrivacyCost(0.0))
        group = info.budget_group or budget_group(path)
        if policy.require_dp and cost.evaluation:
            raise PermissionDenied(f"dataset {info.name!r} only allows differentially private "
                                   f"steps; {package.name}.{spec.step} would measure a model on "
                                   "its rows", "evaluate on a dataset that does not require DP")
        if policy.require_dp and cost.reads and not cost.spends:
            raise PermissionDenied(f"dataset {info.name!r} only allows differentially private "
                                   f"steps; {package.name}.{spec.step} spends no epsilon on it",
                                   "use a DP package or option (e.g. ffnet's "
                                   "differential_privacy_params, or eda)")
        if cost.delta > facts[role].delta_cap * (1 + 1e-9):
            raise PermissionDenied(f"{package.name}.{spec.step} would spend delta {cost.delta:.3g} "
                                   f"on dataset {info.name!r}, above its cap of "
                                   f"{facts[role].delta_cap:.3g} per step",
                                   "ask for a smaller delta")
        eps_budget, dlt_budget = policy.epsilon_budget, policy.total_delta(info.num_rows)
        if cost.spends:
            charges.append(Charge(group, info.name, cost, eps_budget, dlt_budget))
        if cost.evaluation:
            # a model kept at the party is not told apart by the request's arrays: every such
            # evaluation is a model of its own (a retry keeps its task key, so its mode)
            measured = f"step:{task or spec.task_id}" if cost.party_model else model
            evaluations.append(Evaluation(group, info.name, measured, policy.evaluation_epsilon,
                                          eps_budget, dlt_budget, policy.max_exact_evaluations))
    modes = ledger.charge(task or spec.task_id, principal, charges, _by_group(evaluations),
                          session=spec.session_id,
                          round=spec.round, fit=any(c.trains for c in costs.values()))
    out: dict[str, dict[str, Any]] = {}
    for role, (info, path) in handles.items():
        cost, policy = costs.get(role, PrivacyCost(0.0)), policies[role]
        group = info.budget_group or budget_group(path)
        grant: dict[str, Any] = {**cost.as_dict(), "delta_cap": facts[role].delta_cap,
                                 "group": group}
        if cost.evaluation:
            mode = modes.get(group, "exact")
            grant["evaluation"] = mode
            if mode == "noisy":
                grant["evaluation_epsilon"] = policy.evaluation_epsilon
                grant["evaluation_loss_bound"] = policy.evaluation_loss_bound
        out[role] = {**policy.model_dump(), "grant": grant}
    return out


def _by_group(evaluations: Sequence[Evaluation]) -> list[Evaluation]:
    """One evaluation per budget group: a step that measures on two views of one file (e.g. a
    fit's training loss on ``train`` and its incoming model on ``test``) uses that round's one
    slot once. Beyond the slot each measurement is answered with noise, so the charge is the sum
    of their epsilons — or a refusal when one of them allows none."""
    merged: dict[str, Evaluation] = {}
    for ev in evaluations:
        prev = merged.get(ev.group)
        if prev is None:
            merged[ev.group] = ev
            continue
        eps = 0.0 if min(prev.epsilon, ev.epsilon) <= 0 else prev.epsilon + ev.epsilon
        merged[ev.group] = Evaluation(ev.group, prev.dataset,
                                      "+".join(sorted({*prev.model.split("+"), ev.model})), eps,
                                      min(prev.epsilon_budget, ev.epsilon_budget),
                                      min(prev.delta_budget, ev.delta_budget),
                                      min(prev.max_exact, ev.max_exact))
    return list(merged.values())
