"""Parsing contracts and filters with lark; every error names its line, column and what was expected.

The grammar (``grammar.lark``) knows the shape of a rule; function names and their number of
arguments are checked against :data:`~jupyter_fed.contracts.functions.FUNCTIONS` afterwards, so a
misspelt function gets "unknown function 'MEANS' (did you mean MEAN?)" rather than a list of
thirty tokens.
"""

from __future__ import annotations

import difflib
import functools
from importlib import resources
from typing import TYPE_CHECKING, Any

from jupyter_fed.contracts.functions import FUNCTIONS, lookup
from jupyter_fed.contracts.nodes import FLIP, BoolOp, Call, Comparison, Contract, Expr, Rule
from jupyter_fed.errors import ConfigError

if TYPE_CHECKING:
    from lark import Lark

__all__ = ["ContractSyntaxError", "parse_contract", "parse_filter"]

_EXPECTED = {"NAME": "a name", "NUMBER": "a number",
             "COMPARATOR": "a comparison (<, <=, >, >=, ==, !=)", "LPAR": "'('", "RPAR": "')'",
             "COMMA": "','", "_AND": "AND", "_OR": "OR", "_NL": "the end of the line",
             "$END": "the end of the text"}


class ContractSyntaxError(ConfigError):
    """A contract or filter that does not parse, with where and what was expected.

    Attributes
    ----------
    line, column
        1-based position of the problem.
    expected
        What could have come there instead, in words (empty for unknown functions).
    """

    code = "invalid_contract"

    def __init__(self, message: str, hint: str = "", *, line: int = 0, column: int = 0,
                 expected: list[str] | None = None) -> None:
        self.line, self.column, self.expected = line, column, list(expected or [])
        super().__init__(message, hint, details=[{"line": line, "column": column,
                                                 "expected": self.expected, "error": message}])


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    from lark import Lark

    grammar = resources.files("jupyter_fed.contracts").joinpath("grammar.lark").read_text()
    return Lark(grammar, start=["contract", "filter"], parser="lalr", propagate_positions=True,
                maybe_placeholders=False)


def parse_contract(text: str) -> Contract:
    """Parse a PSR contract: one rule per line, ``#`` comments, AND/OR and parentheses.

    Raises
    ------
    ContractSyntaxError
        With the line and column of the first problem and what was expected there.
    """
    tree = _parse(text, "contract")
    rules = []
    lines = text.splitlines()
    for number, rule in enumerate(tree.children, start=1):
        line = rule.meta.line
        rules.append(Rule(number, line, lines[line - 1].split("#", 1)[0].strip(),
                          _expr(rule.children[0], text)))
    return Contract(tuple(rules), text)


def parse_filter(text: str) -> Expr:
    """Parse a row filter such as ``x0 > 0 AND (y == 1 OR x3 <= -2.5)``."""
    tree = _parse(text, "filter")
    return _expr(tree.children[0], text)


def _parse(text: str, start: str) -> Any:
    from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

    try:
        return _parser().parse(text, start=start)
    except UnexpectedInput as exc:
        if isinstance(exc, UnexpectedToken):
            accepts = exc.interactive_parser.accepts() if exc.interactive_parser else exc.expected
            token = exc.token
            at_end = token.type == "$END"
            found = "the end of the text" if at_end else (
                "the end of the line" if token.type == "_NL" else f"{str(token)!r}")
            line, column = (_end(text) if at_end else (exc.line, exc.column))
        elif isinstance(exc, UnexpectedCharacters):
            accepts, found = exc.allowed or set(), repr(exc.char)
            line, column = exc.line, exc.column
        else:  # pragma: no cover - other lark errors carry no position we can do better with
            accepts, found, (line, column) = set(), "unexpected input", _end(text)
        expected = sorted({_EXPECTED.get(name, name) for name in accepts})
        raise _error(text, line, column, f"expected {_alternatives(expected)}, found {found}",
                     expected) from None


def _expr(node: Any, text: str) -> Expr:
    kind = node.data
    if kind in ("and_expr", "f_and", "or_expr", "f_or"):
        terms = tuple(_expr(child, text) for child in node.children)
        return BoolOp("AND", terms) if kind in ("and_expr", "f_and") else BoolOp("OR", terms)
    flipped = kind.endswith("_flipped")
    a, op, b = node.children
    if flipped:
        a, b, op = b, a, FLIP[str(op)]
    left: Call | str = _call(a, text) if kind.startswith("comparison") else str(a)
    return Comparison(left, str(op), float(b))  # type: ignore[arg-type]


def _call(node: Any, text: str) -> Call:
    name, *args = node.children
    fn = lookup(str(name))
    if fn is None:
        close = difflib.get_close_matches(str(name).upper(), FUNCTIONS, n=1)
        guess = f" (did you mean {close[0]}?)" if close else ""
        raise _error(text, name.line, name.column, f"unknown function {str(name)!r}{guess}", [],
                     "the functions are " + ", ".join(FUNCTIONS))
    if len(args) != fn.arity:
        raise _error(text, name.line, name.column,
                     f"{fn.name} takes {fn.arity} column{'s' if fn.arity > 1 else ''}, "
                     f"{len(args)} given", [])
    return Call(fn.name, tuple(str(a) for a in args), name.line, name.column)


def _error(text: str, line: int, column: int, what: str, expected: list[str],
           hint: str = "") -> ContractSyntaxError:
    lines = text.splitlines() or [""]
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    pointer = f"{source}\n{' ' * max(column - 1, 0)}^"
    return ContractSyntaxError(f"line {line}, column {column}: {what}",
                               f"{hint}\n{pointer}" if hint else pointer,
                               line=line, column=column, expected=expected)


def _end(text: str) -> tuple[int, int]:
    lines = text.splitlines() or [""]
    if text.endswith("\n"):
        return len(lines) + 1, 1
    return len(lines), len(lines[-1]) + 1


def _alternatives(words: list[str]) -> str:
    if not words:
        return "something else"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
