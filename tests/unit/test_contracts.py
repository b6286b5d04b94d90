"""PSR contracts: every example of the SymetryML reference parses and evaluates like pandas would;
bad rules fail with their line, column and what was expected."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from jupyter_fed.contracts import (
    FUNCTIONS,
    BoolOp,
    Comparison,
    ContractSyntaxError,
    evaluate,
    filter_mask,
    parse_contract,
    parse_filter,
)
from jupyter_fed.packages.stats._explore import StatsView
from jupyter_fed.packages.stats._moments import CondMoments, Moments, Stats

# The two example contracts of symetryml-federated-api.txt, verbatim.
REFERENCE_EXAMPLE = """\
COUNT(sepal_length) >= 150
MEAN(sepal_width) > 3.0
STDDEV(petal_length) > 1.75
VARIANCE(sepal_width) > 0.1
VARIANCE(petal_width) > 0.5
COUNT(Iris_setosa) > 100
COUNT(Iris_versicolor) > 100
COUNT(Iris_virginica) > 100
# BI rules
COVAR(petal_length, petal_width) > 1.28
LINCORR(petal_width, petal_length) > 0.25
COND_COUNT(sepal_length, Iris_versicolor) >= 50
COND_MEAN(sepal_length, Iris_versicolor) >= 50
COND_STDDEV(sepal_length, Iris_versicolor) >= 50
COND_VARIANCE(sepal_length, Iris_versicolor) >= 50
"""
REFERENCE_MULTI = """\
COUNT(sepal_length) >= 150 AND MEAN(sepal_width) > 3.0
STDDEV(petal_length) > 1.75
VARIANCE(sepal_width) > 0.1 OR VARIANCE(petal_width) > 0.5
COUNT(Iris_setosa) > 100 AND (COUNT(Iris_versicolor) > 100 OR COUNT(Iris_virginica) > 100)
# BI rules
COVAR(petal_length, petal_width) > 1.28 OR LINCORR(petal_width, petal_length) > 0.25
COND_STDDEV(sepal_length, Iris_versicolor) >= 50 OR COND_VARIANCE(sepal_length, Iris_versicolor) >= 50
"""


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    data = load_iris()
    df = pd.DataFrame(data.data, columns=["sepal_length", "sepal_width", "petal_length",
                                          "petal_width"])
    for code, name in enumerate(["Iris_setosa", "Iris_versicolor", "Iris_virginica"]):
        df[name] = (data.target == code).astype(float)
    return df


def stats_of(df: pd.DataFrame) -> StatsView:
    """Exact statistics of a frame, conditioned on each of its binary columns."""
    x = df.to_numpy(np.float64)
    binary = [c for c in df.columns if df[c].isin([0, 1]).all()]
    def block(rows: np.ndarray) -> CondMoments:
        m = Moments.of(rows)
        return CondMoments(m.n, m.mean, m.ss)

    cond = {b: block(x[df[b].to_numpy() == 1]) for b in binary}
    return StatsView(Stats(list(df.columns), Moments.of(x), np.full(x.shape[1], float(len(x))),
                           binary, cond))


def pandas_value(func: str, args: tuple[str, ...], df: pd.DataFrame) -> float:
    """An independent implementation of each reference function, on the rows themselves."""
    a = df[args[0]]
    if len(args) == 2:
        b = df[args[1]]
        if func in ("COVAR", "LINCORR"):
            return np.cov(a, b, bias=True)[0, 1] if func == "COVAR" else np.corrcoef(a, b)[0, 1]
        when = {"PCT_OF_TRUE": 1, "NUM_OCCURENCE_WHEN_TRUE": 1, "MEAN_WHEN_TRUE": 1,
                "PCT_OF_FALSE": 0, "NUM_OCCURENCE_WHEN_FALSE": 0, "MEAN_WHEN_FALSE": 0}
        if func in when:
            rows = a[b == when[func]]
            return {"PCT": 100 * (rows == 1).mean(), "NUM": (rows == 1).sum(),
                    "MEA": rows.mean()}[func[:3]]
        a = a[b == (0 if func.startswith("COMPL_") else 1)]
        func = func.removeprefix("COMPL_").removeprefix("COND_")
    ddof = 1 if func.endswith("_UNBIASED") else 0
    binary = bool(df[args[0]].isin([0, 1]).all())  # COUNT of a binary column: rows where it is 1
    return {"COUNT": lambda: int((a == 1).sum()) if binary else len(a), "ROWS": lambda: len(a),
            "MEAN": a.mean, "STDDEV": lambda: a.std(ddof=0),
            "VARIANCE": lambda: a.var(ddof=0), "STDDEV_UNBIASED": lambda: a.std(ddof=ddof),
            "VARIANCE_UNBIASED": lambda: a.var(ddof=ddof)}[func]()


def pandas_holds(expr, df: pd.DataFrame) -> bool:
    if isinstance(expr, BoolOp):
        results = [pandas_holds(t, df) for t in expr.terms]
        return all(results) if expr.op == "AND" else any(results)
    value = pandas_value(expr.left.func, expr.left.args, df)
    return {"<": value < expr.value, "<=": value <= expr.value, ">": value > expr.value,
            ">=": value >= expr.value, "==": value == expr.value, "!=": value != expr.value}[expr.op]


@pytest.mark.parametrize("text, count", [(REFERENCE_EXAMPLE, 14), (REFERENCE_MULTI, 6)])
def test_every_reference_example_parses(text: str, count: int) -> None:
    contract = parse_contract(text)

    assert len(contract.rules) == count
    assert [r.number for r in contract.rules] == list(range(1, count + 1))
    written = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert [r.text for r in contract.rules] == written


# COUNT of a one-hot column counts its 1s (50 of each species): rules 6-8 and the first term of
# the multi-rule example's rule 4 fail on iris, as the reference's convention says they should.
@pytest.mark.parametrize("text, failing", [(REFERENCE_EXAMPLE, [6, 7, 8, 12, 13, 14]),
                                           (REFERENCE_MULTI, [4, 6])])
def test_reference_examples_evaluate_on_iris_like_pandas(iris, text: str, failing: list[int]) -> None:
    contract = parse_contract(text)

    report = evaluate(contract, stats_of(iris))

    assert [o.passed for o in report.outcomes] == [pandas_holds(r.expr, iris) for r in contract.rules]
    assert [o.rule.number for o in report.failed] == failing  # the conditional means are ~6, not 50
    assert not report.passed


def test_every_function_matches_pandas(iris) -> None:
    view = stats_of(iris)
    for name, fn in FUNCTIONS.items():
        for first in (["Iris_setosa"] if fn.needs_binary_first else ["petal_length", "Iris_setosa"]):
            args = (first, "Iris_versicolor")[:fn.arity]

            got, want = view.statistic(name, args), pandas_value(name, args, iris)

            assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (name, args)


def test_count_of_a_binary_column_counts_its_ones_and_rows_counts_rows(iris) -> None:
    view = stats_of(iris)

    assert view.count("Iris_setosa") == 50 and view.rows("Iris_setosa") == 150
    assert view.count("sepal_length") == view.rows("sepal_length") == 150
    assert view.statistic("COND_COUNT", ["Iris_setosa", "Iris_versicolor"]) == 0
    assert view.statistic("COND_COUNT", ["sepal_length", "Iris_versicolor"]) == 50


def test_rules_fail_without_giving_the_value(iris) -> None:
    frame = iris.assign(constant=1.0)
    contract = parse_contract("MEAN(sepal_length) > 6\nLINCORR(constant, sepal_length) > 0\n"
                              "MEAN(no_such_column) > 0\nPCT_OF_TRUE(sepal_length, Iris_setosa) > 1")

    report = evaluate(contract, stats_of(frame))

    assert report.messages() == [
        "rule 1 failed: MEAN(sepal_length) > 6",
        "rule 2 failed: LINCORR(constant, sepal_length) > 0 (LINCORR(constant, sepal_length) is not "
        "defined on these statistics)",
        "rule 3 failed: MEAN(no_such_column) > 0 (column 'no_such_column' is not among the "
        "statistics)",
        "rule 4 failed: PCT_OF_TRUE(sepal_length, Iris_setosa) > 1 (PCT_OF_TRUE(sepal_length, "
        "Iris_setosa) is not defined on these statistics)"]
    assert f"{iris.sepal_length.mean():.3f}"[:4] not in " ".join(report.messages())


def test_and_binds_tighter_than_or_and_keywords_ignore_case() -> None:
    rule = parse_contract("mean(a) > 1 or Mean(b) > 2 and COUNT(c) > 3").rules[0]

    assert rule.expr.op == "OR"
    assert str(rule.expr) == "MEAN(a) > 1 OR MEAN(b) > 2 AND COUNT(c) > 3"
    assert isinstance(rule.expr.terms[1], BoolOp) and rule.expr.terms[1].op == "AND"


def test_comments_blank_lines_and_flipped_comparisons() -> None:
    contract = parse_contract("\n# header\n\n  3 <= COUNT(x)   # trailing\n\nMEAN(ANDREW) != -1.5e2\n")

    assert [(r.number, r.line, r.text) for r in contract.rules] == [
        (1, 4, "3 <= COUNT(x)"), (2, 6, "MEAN(ANDREW) != -1.5e2")]
    assert str(contract.rules[0].expr) == "COUNT(x) >= 3"
    assert parse_contract("# only a comment\n").rules == ()


@pytest.mark.parametrize("text, line, column, expected", [
    ("COUNT(x) 5", 1, 10, ["a comparison (<, <=, >, >=, ==, !=)"]),
    ("COUNT(x) > 1\nMEAN(y) >", 2, 10, ["a number"]),
    ("COUNT(x > 5", 1, 9, ["')'", "','"]),
    ("COUNT(x) > 1 AND\nMEAN(y) > 1", 1, 17, ["'('", "a name", "a number"]),
    ("(COUNT(x) > 1", 1, 14, ["')'"]),
    ("COUNT(x) > 1)", 1, 13, ["the end of the line", "the end of the text"]),
    ("COUNT(x) > 1 ORDER", 1, 14, ["AND", "OR", "the end of the line", "the end of the text"]),
])
def test_syntax_errors_name_line_column_and_expected(text, line, column, expected) -> None:
    with pytest.raises(ContractSyntaxError) as info:
        parse_contract(text)

    err = info.value
    assert (err.line, err.column) == (line, column)
    assert sorted(err.expected) == sorted(expected)
    assert err.message.startswith(f"line {line}, column {column}: expected ")
    assert err.hint.splitlines()[-1] == " " * (column - 1) + "^"


def test_unknown_functions_and_wrong_arity_are_positioned() -> None:
    with pytest.raises(ContractSyntaxError) as unknown:
        parse_contract("COUNT(x) > 1\n  MEANS(x) > 1")
    with pytest.raises(ContractSyntaxError) as arity:
        parse_contract("LINCORR(x) > 0")

    assert unknown.value.message == "line 2, column 3: unknown function 'MEANS' (did you mean MEAN?)"
    assert arity.value.message == "line 1, column 1: LINCORR takes 2 columns, 1 given"


def test_filters_parse_render_canonically_and_mask_rows() -> None:
    expr = parse_filter("x0 > 0 and (y == 1 or -2.5 >= x3)")
    cols = {"x0": np.array([1.0, 1.0, -1.0, 2.0]), "y": np.array([1.0, 0.0, 1.0, 0.0]),
            "x3": np.array([0.0, -3.0, 0.0, 0.0])}

    assert str(expr) == "x0 > 0 AND (y == 1 OR x3 <= -2.5)"
    assert filter_mask(expr, cols).tolist() == [True, True, False, False]
    assert isinstance(parse_filter("x0 > 1"), Comparison)
    with pytest.raises(ContractSyntaxError):
        parse_filter("x0 >")
    assert math.isnan(StatsView(Stats(["a"], Moments.of(np.ones((3, 1))), np.full(1, 3.0)))
                      .lincorr("a", "a"))
