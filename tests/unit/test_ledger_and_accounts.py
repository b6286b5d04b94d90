"""The budget ledger and token store against a real SQLite file."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from jupyter_fed.errors import AuthError, ConfigError
from jupyter_fed.runner.accounts import Accounts
from jupyter_fed.runner.policy import DatasetPolicy, Ledger, PrivacyBudgetExceeded
from jupyter_fed.runner.store import RunnerStore


@pytest.fixture()
def store(tmp_path: Path):
    s = RunnerStore(tmp_path / "runner.db")
    yield s
    s.close()


def test_debits_accumulate_until_the_step_that_would_overdraw(store) -> None:
    ledger = Ledger(store)
    assert ledger.debit("t1", "ann", "d", 4.0, 10.0) == pytest.approx(6.0)
    assert ledger.debit("t2", "ann", "d", 4.0, 10.0) == pytest.approx(2.0)

    with pytest.raises(PrivacyBudgetExceeded, match="2 of 10 remains") as info:
        ledger.debit("t3", "ann", "d", 4.0, 10.0)

    assert info.value.status == 403 and info.value.code == "privacy_budget_exceeded"
    assert ledger.spending("ann")[0]["spent"] == pytest.approx(8.0)  # the refusal charged nothing


def test_budgets_are_per_principal_and_per_dataset(store) -> None:
    ledger = Ledger(store)
    ledger.debit("t1", "ann", "d1", 9.0, 10.0)
    ledger.debit("t2", "bob", "d1", 9.0, 10.0)
    ledger.debit("t3", "ann", "d2", 9.0, 10.0)
    spent = {(r["principal"], r["dataset"]): r["spent"] for r in ledger.spending()}
    assert spent == {("ann", "d1"): 9.0, ("bob", "d1"): 9.0, ("ann", "d2"): 9.0}


def test_a_retried_task_is_charged_once(store) -> None:
    ledger = Ledger(store)
    ledger.debit("same", "ann", "d", 3.0, 10.0)
    ledger.debit("same", "ann", "d", 3.0, 10.0)
    assert ledger.spending()[0]["spent"] == pytest.approx(3.0)


def test_concurrent_debits_never_overdraw(store) -> None:
    ledger = Ledger(store)
    outcomes: list[bool] = []

    def spend(i: int) -> None:
        try:
            ledger.debit(f"t{i}", "ann", "d", 1.0, 10.0)
            outcomes.append(True)
        except PrivacyBudgetExceeded:
            outcomes.append(False)

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert outcomes.count(True) == 10
    assert ledger.spending()[0]["spent"] == pytest.approx(10.0)


def test_default_policy_and_minimum_rows() -> None:
    policy = DatasetPolicy()
    assert (policy.min_count, policy.epsilon_budget) == (10, 10.0)
    assert policy.minimum_rows(16) == 21
    assert DatasetPolicy(min_rows=100).minimum_rows(16) == 100
    assert DatasetPolicy(allowed_packages=["eda"]).allows("eda")
    assert not DatasetPolicy(allowed_packages=["eda"]).allows("ffnet")


def test_tokens_are_stored_hashed_and_deleting_a_user_revokes_them(store, tmp_path) -> None:
    accounts = Accounts(store)
    accounts.create_user("ann", "model_builder")
    _, secret = accounts.create_token("ann")
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("runner.db*"))  # db and its WAL
    assert b"tok_" in on_disk and secret.encode() not in on_disk
    assert accounts.authenticate(f"Bearer {secret}").scopes == {
        "read_catalog", "create_session", "read_user_session", "read_model", "run_custom_code"}

    accounts.delete_user("ann")

    with pytest.raises(AuthError, match="revoked"):
        accounts.authenticate(f"Bearer {secret}")
    with pytest.raises(ConfigError, match="unknown role"):
        accounts.create_user("bob", "superuser")
