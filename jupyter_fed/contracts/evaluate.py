"""Evaluating contracts on statistics and filters on rows.

A contract is evaluated against anything that can answer ``statistic(func, args)`` — a runner's
own statistics before it shares them, a contribution the coordinator received, or merged results
in the kernel. Outcomes name the rule that failed and never the value that made it fail, so a
refusal can be shown to the other side without leaking the statistic it protects.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from jupyter_fed.contracts.nodes import BoolOp, Call, Comparison, Contract, Expr, Rule

__all__ = ["ContractReport", "RuleOutcome", "StatisticSource", "evaluate", "filter_mask"]

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne}


class StatisticSource(Protocol):
    """What a contract is evaluated against."""

    def statistic(self, func: str, args: Sequence[str]) -> float:
        """The value of ``func(*args)``; NaN where not defined; ``KeyError`` for unknown columns."""
        ...


@dataclass(frozen=True)
class RuleOutcome:
    """Whether one rule held; ``reason`` explains a failure without giving any value."""

    rule: Rule
    passed: bool
    reason: str = ""

    def describe(self) -> str:
        """``rule N failed: <rule text>``, plus why when a statistic was not available."""
        head = f"rule {self.rule.number} {'passed' if self.passed else 'failed'}: {self.rule.text}"
        return f"{head} ({self.reason})" if self.reason else head


@dataclass(frozen=True)
class ContractReport:
    """The outcome of every rule of a contract."""

    outcomes: tuple[RuleOutcome, ...]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    @property
    def failed(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if not o.passed]

    def messages(self) -> list[str]:
        """One line per failed rule."""
        return [o.describe() for o in self.failed]

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "rules": len(self.outcomes),
                "failed": [{"rule": o.rule.number, "line": o.rule.line, "text": o.rule.text,
                            "reason": o.reason} for o in self.failed]}


def evaluate(contract: Contract, source: StatisticSource) -> ContractReport:
    """Evaluate every rule of ``contract`` on ``source``.

    A comparison with a statistic that is not defined (NaN: too few rows, a suppressed group, a
    column that is not binary) is false, so the rule fails rather than passing by accident; a
    column the statistics do not have fails its rule too.
    """
    outcomes = []
    for rule in contract.rules:
        problems: list[str] = []
        passed = _holds(rule.expr, source, problems)
        outcomes.append(RuleOutcome(rule, passed, "" if passed else "; ".join(dict.fromkeys(problems))))
    return ContractReport(tuple(outcomes))


def _holds(expr: Expr, source: StatisticSource, problems: list[str]) -> bool:
    if isinstance(expr, BoolOp):
        results = [_holds(t, source, problems) for t in expr.terms]  # all, so reasons are complete
        return all(results) if expr.op == "AND" else any(results)
    assert isinstance(expr.left, Call)
    try:
        value = float(source.statistic(expr.left.func, expr.left.args))
    except KeyError as exc:
        problems.append(f"{exc.args[0] if exc.args else 'a column'} is not among the statistics")
        return False
    if np.isnan(value):
        problems.append(f"{expr.left} is not defined on these statistics")
        return False
    return bool(_OPS[expr.op](value, expr.value))


def filter_mask(expr: Expr, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """The boolean row mask of a filter, given its columns' values for a block of rows."""
    if isinstance(expr, BoolOp):
        masks = [filter_mask(t, columns) for t in expr.terms]
        combine = np.logical_and if expr.op == "AND" else np.logical_or
        out = masks[0]
        for m in masks[1:]:
            out = combine(out, m)
        return out
    assert isinstance(expr, Comparison)
    return np.asarray(_OPS[expr.op](columns[str(expr.left)], expr.value), dtype=bool)
