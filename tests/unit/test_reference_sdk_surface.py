"""The reference SDK's spellings: ``connect(token)``, ``Scope``, ``create_token(user_id=...)``,
task builders that take paths, ``session.metrics.as_dict()`` — without runners."""

from __future__ import annotations

from typing import Any

import pytest

import jupyter_fed
from jupyter_fed.auth.scopes import Scope
from jupyter_fed.client import Client, TaskBuilder
from jupyter_fed.client.paths import resolve_task
from jupyter_fed.client.tokens import one_user, scope_names, with_reference_keys
from jupyter_fed.errors import ConfigError, NotFoundError
from jupyter_fed.runner.accounts import ALL_SCOPES


class FakeBackend:
    """Answers the path lookup as runners ``a`` and ``b`` would, and records admin calls."""

    def __init__(self, at: dict[str, dict[str, list[str]]]) -> None:
        self.at, self.calls = at, []

    def runners(self) -> list[dict[str, Any]]:
        return [{"name": name} for name in self.at]

    def runner_admin(self, runner: str, method: str, path: str, body: Any = None,
                     params: Any = None) -> Any:
        self.calls.append((runner, method, path, body))
        if path == "/v1/datasets/lookup":
            names = self.at[runner].get(body["path"])
            if not names:
                known = sorted({n for found in self.at[runner].values() for n in found})
                raise NotFoundError("no dataset registered at that path",
                                    f"datasets you may use there: {', '.join(known)}")
            return {"datasets": names}
        if path == "/v1/tokens":
            return {"token_id": "tok_1", "user": body["user"], "scopes": body["scopes"],
                    "token": "jfr_x", "active": True}
        return None

    def metrics(self, sid: str) -> dict[str, Any]:
        return {"session_id": sid, "federated_metrics": [{"loss": 1.0}], "client_metrics": []}

    def session(self, sid: str) -> dict[str, Any]:
        return {"id": sid, "name": "s", "package": "ffnet"}


def _client(at: dict[str, dict[str, list[str]]]) -> Client:
    return Client(FakeBackend(at))  # type: ignore[arg-type]


def test_scope_members_are_the_runners_scopes() -> None:
    assert {s.value for s in Scope} == set(ALL_SCOPES)
    assert jupyter_fed.Scope is Scope
    assert scope_names([Scope.create_session, "read_model"]) == ["create_session", "read_model"]
    assert scope_names("read_model") == ["read_model"] and scope_names(None) is None


def test_token_requests_and_answers_take_both_vocabularies() -> None:
    client = _client({"a": {}})

    made = client.auth("a").create_token(user_id="ana", scopes=[Scope.read_user_session])

    assert client._backend.calls[-1][3]["user"] == "ana"
    assert client._backend.calls[-1][3]["scopes"] == ["read_user_session"]
    assert made["user_id"] == "ana" and made["scope"] == "read_user_session"
    assert with_reference_keys({"x": 1}) == {"x": 1}
    with pytest.raises(ConfigError, match="disagree"):
        one_user("ana", "bob")
    with pytest.raises(ConfigError, match="needs the user"):
        one_user(None, None)


def test_a_path_resolves_to_the_registered_name_at_the_task_runner() -> None:
    client = _client({"a": {"/d/train.parquet": ["train"], "/d/test.parquet": ["test"]},
                      "b": {"/d/train.parquet": ["other"]}})
    builder = TaskBuilder(client=client, task_runner_id="a")

    task = builder.hfl(train_path="/d/train.parquet", test_path="/d/test.parquet")
    eda = builder.eda(dataset_name="train", dataset_path="/d/train.parquet")

    assert task == {"runner": "a", "client_name": None,
                    "datasets": {"train": "train", "test": "test"}}
    assert eda["datasets"] == {"data": "train"} and "paths" not in eda


def test_a_path_that_names_another_dataset_or_none_is_refused_with_the_names() -> None:
    client = _client({"a": {"/d/train.parquet": ["train"], "/d/view.parquet": ["v1", "v2"]}})
    builder = TaskBuilder(client=client, task_runner_id="a")

    with pytest.raises(NotFoundError) as none:
        builder.hfl(train_path="/d/secret.parquet")
    with pytest.raises(ConfigError, match="not 'dataset_two'"):
        builder.eda(dataset_name="dataset_two", dataset_path="/d/train.parquet")
    with pytest.raises(ConfigError, match="several registered datasets"):
        builder.eda(dataset_path="/d/view.parquet")

    assert none.value.message.startswith("train_path")
    assert "train, v1, v2" in none.value.hint
    assert builder.eda(dataset_name="v2", dataset_path="/d/view.parquet")["datasets"] == {
        "data": "v2"}


def test_without_a_runner_the_one_runner_holding_the_path_is_chosen() -> None:
    client = _client({"a": {"/d/a.parquet": ["train"]}, "b": {"/d/b.parquet": ["train"],
                                                              "/d/a.parquet": ["x"]}})
    builder = TaskBuilder(client=client)

    task = builder.hfl(train_path="/d/b.parquet")

    assert task["runner"] == "b" and task["datasets"]["train"] == "train"
    with pytest.raises(ConfigError, match="several runners"):
        builder.hfl(train_path="/d/a.parquet")
    with pytest.raises(NotFoundError, match="no runner has a dataset"):
        builder.hfl(train_path="/d/none.parquet")


def test_without_a_client_paths_wait_for_the_task_group() -> None:
    task = TaskBuilder(task_runner_id="a").hfl(train_path="/d/train.parquet")

    assert task["paths"] == {"train": ["train_path", "/d/train.parquet"]}
    resolved = resolve_task(_client({"a": {"/d/train.parquet": ["train"]}}), task)
    assert resolved["datasets"]["train"] == "train" and "paths" not in resolved
    with pytest.raises(ConfigError, match="no train dataset"):
        TaskBuilder().hfl()
    with pytest.raises(ConfigError, match="no data dataset"):
        TaskBuilder().eda()


def test_fl_session_and_metrics_both_ways() -> None:
    session = _client({}).fl_session("s1")

    assert session.id == "s1"
    assert session.metrics().as_dict()["session_id"] == "s1"
    assert session.metrics.as_dict()["session_id"] == "s1"
    assert session.metrics.latest() == {"loss": 1.0}


def test_a_bare_token_needs_a_configured_coordinator(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JUPYTER_FED_URL", "JPY_PARENT_PID", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(ConfigError, match="needs a configured coordinator"):
        jupyter_fed.connect("token")
    with pytest.raises(ConfigError, match="needs a configured coordinator"):
        jupyter_fed.connect(token="token")
    with pytest.raises(ConfigError, match="not a URL, and token= is given"):
        jupyter_fed.connect("token", token="other")
    with pytest.raises(ConfigError, match="embedded=True"):
        jupyter_fed.connect("token", embedded=True)
    monkeypatch.setenv("JUPYTER_FED_URL", "localhost:8888")
    with pytest.raises(ConfigError, match="JUPYTER_FED_URL"):
        jupyter_fed.connect("token")


def test_the_reference_import_paths_exist() -> None:
    from jupyter_fed.api import connect
    from jupyter_fed.auth import connect_to_auth_client
    from jupyter_fed.taskgroup.base import SessionTaskGroup
    from jupyter_fed.taskgroup.taskbuilder import taskrunner_context  # noqa: F401
    from jupyter_fed.taskgroup.taskbuilder.integrate_ai import IntegrateAiTaskBuilder

    assert connect is jupyter_fed.client.connect and callable(connect_to_auth_client)
    assert SessionTaskGroup is jupyter_fed.SessionTaskGroup
    assert IntegrateAiTaskBuilder(client=None, task_runner_id="r").runner == "r"
