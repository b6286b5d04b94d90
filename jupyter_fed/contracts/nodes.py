"""The parsed form of contracts and filters: small frozen dataclasses that render back to text.

Rendering gives a canonical spelling (upper-case functions and keywords, single spaces, minimal
parentheses), so two filters that differ only in layout are recognised as the same query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Op = Literal["<", "<=", ">", ">=", "==", "!="]
FLIP: dict[str, Op] = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


@dataclass(frozen=True)
class Call:
    """A statistic function applied to columns, e.g. ``LINCORR(petal_width, petal_length)``."""

    func: str
    args: tuple[str, ...]
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.func}({', '.join(self.args)})"


@dataclass(frozen=True)
class Comparison:
    """``left op value``: a statistic (contracts) or a column (filters) against a number."""

    left: Call | str
    op: Op
    value: float

    def __str__(self) -> str:
        return f"{self.left} {self.op} {_num(self.value)}"


@dataclass(frozen=True)
class BoolOp:
    """Two or more terms joined by one keyword; AND binds tighter than OR."""

    op: Literal["AND", "OR"]
    terms: tuple[Expr, ...]

    def __str__(self) -> str:
        parts = [f"({t})" if isinstance(t, BoolOp) and t.op == "OR" and self.op == "AND" else str(t)
                 for t in self.terms]
        return f" {self.op} ".join(parts)


Expr = Comparison | BoolOp


@dataclass(frozen=True)
class Rule:
    """One line of a contract.

    Attributes
    ----------
    number
        1-based position among the contract's rules (comments and blank lines do not count).
    line
        1-based line of the source text.
    text
        The rule as written, without its trailing comment.
    """

    number: int
    line: int
    text: str
    expr: Expr

    def calls(self) -> list[Call]:
        return list(_calls(self.expr))


@dataclass(frozen=True)
class Contract:
    """A PSR contract: valid when every rule holds."""

    rules: tuple[Rule, ...]
    source: str = ""

    def calls(self) -> list[Call]:
        return [c for r in self.rules for c in r.calls()]

    def columns(self) -> list[str]:
        """Every column the contract mentions, in order of first mention."""
        return list(dict.fromkeys(a for c in self.calls() for a in c.args))

    def __str__(self) -> str:
        return "\n".join(str(r.expr) for r in self.rules)


def _calls(expr: Expr) -> list[Call]:
    if isinstance(expr, Comparison):
        return [expr.left] if isinstance(expr.left, Call) else []
    return [c for t in expr.terms for c in _calls(t)]


def filter_columns(expr: Expr) -> list[str]:
    """The columns a filter reads, in order of first mention."""
    if isinstance(expr, Comparison):
        return [str(expr.left)]
    return list(dict.fromkeys(c for t in expr.terms for c in filter_columns(t)))
