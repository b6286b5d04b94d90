"""PSR contracts: rules that statistics must satisfy before they are shared or accepted.

The language is SymetryML's: one rule per line, ``#`` comments, predicates joined by AND / OR
with parentheses, each comparing a statistic function of one or two columns with a number::

    COUNT(sepal_length) >= 150 AND MEAN(sepal_width) > 3.0
    COND_MEAN(sepal_length, Iris_versicolor) >= 5   # mean where Iris_versicolor is 1

The same boolean language over bare column names (``x0 > 0 AND y == 1``) describes row filters.
"""

from __future__ import annotations

from jupyter_fed.contracts.evaluate import (
    ContractReport,
    RuleOutcome,
    StatisticSource,
    evaluate,
    filter_mask,
)
from jupyter_fed.contracts.functions import FUNCTIONS, Function, lookup
from jupyter_fed.contracts.nodes import BoolOp, Call, Comparison, Contract, Expr, Rule, filter_columns
from jupyter_fed.contracts.parser import ContractSyntaxError, parse_contract, parse_filter

__all__ = [
    "FUNCTIONS",
    "BoolOp",
    "Call",
    "Comparison",
    "Contract",
    "ContractReport",
    "ContractSyntaxError",
    "Expr",
    "Function",
    "Rule",
    "RuleOutcome",
    "StatisticSource",
    "evaluate",
    "filter_columns",
    "filter_mask",
    "lookup",
    "parse_contract",
    "parse_filter",
]
