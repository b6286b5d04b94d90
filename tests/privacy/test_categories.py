"""Attack #3: EDA named a value held by one person (age 97 in 1 of 20 rows: 7 of 20 runs at
epsilon 0.01). Category values are now chosen by DP partition selection, never on k alone, and
which columns are categorical is decided from public facts (the registered schema, the config),
not by counting distinct values.

False-failure probability: at epsilon 0.01 per column and delta 1e-6 the release threshold is
1,314; a value held by one row passes it with probability at most 1e-6 per run, so all 40 runs
keep it out except with probability below 4e-5.
"""

from __future__ import annotations

from typing import Any

from attack import log_text

from jupyter_fed import SessionTaskGroup


def eda(client: Any, **model: Any) -> Any:
    session = client.create_analytics_session("eda", "ages", data_config={"people": ["age"]},
                                              model_config={"epsilon": 0.01, **model}).start()
    SessionTaskGroup(session).add_task(client.task_builder().eda("people")).start().wait(60)
    return session


def test_a_value_held_by_one_row_is_never_named(new_client, frames) -> None:
    assert (frames["people"].age == 97).sum() == 1 and len(frames["people"]) == 20
    client = new_client()
    named = []
    for run in range(40):  # half with the column described as categories, half by default
        session = eda(client, **({"categorical": ["age"]} if run % 2 else {}))
        column = session.results()["people"]["age"]
        named.append(97.0 in column.uniques())
        if run % 2:
            assert column.kind == "categorical" and column.withheld.startswith(
                "no value's noisy count reached the release threshold")
        else:
            assert column.kind == "numeric"  # an integer column with a rare value: no names
    print(f"\nage 97 named in {sum(named)} of {len(named)} runs")
    assert not any(named)
    assert "not released" in log_text(session)
