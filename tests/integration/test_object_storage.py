"""Datasets on object storage: a real S3-compatible server (moto's, on loopback, checking
signatures), a real runner process whose endpoint and credentials come from its environment and
its runner.json, and the same rows registered as a local file to compare against."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from jupyter_fed import SessionTaskGroup
from jupyter_fed.demo.federation import RunnerProcess
from jupyter_fed.errors import ConfigError

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

ROWS = 3000
ROW_GROUP = 400  # rows per parquet row group: a step's 256-row batches straddle them
BATCH = 256
BUCKET = "silo"
PREFIX = f"s3://{BUCKET}/data/"


def table(seed: int = 5) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (ROWS, 3))
    logit = 0.3 + x @ np.array([1.0, -0.7, 0.4])
    return pa.table({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2],
                     "g": rng.integers(0, 3, ROWS),
                     "y": (rng.random(ROWS) < 1 / (1 + np.exp(-logit))).astype(np.int64)})


def parquet_bytes(t: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(t, buf, row_group_size=ROW_GROUP)
    return buf.getvalue()


def csv_bytes(t: pa.Table) -> bytes:
    buf = io.BytesIO()
    pacsv.write_csv(t, buf)
    return buf.getvalue()


@dataclass
class S3:
    endpoint: str
    key: str
    secret: str
    admin: Any  # a boto3 S3 client that bypasses nothing: it signs as the runner's user

    @property
    def env(self) -> dict[str, str]:
        """What a custodian puts in the runner's environment."""
        return {"AWS_ACCESS_KEY_ID": self.key, "AWS_SECRET_ACCESS_KEY": self.secret,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true"}

    @property
    def options(self) -> dict[str, str]:
        """The same as fsspec storage options (for reading in this process)."""
        return {"key": self.key, "secret": self.secret, "endpoint_url": self.endpoint}


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    """moto's S3 server on an ephemeral loopback port, with an IAM user whose requests it checks
    (signature and policy): a wrong secret is refused as real S3 refuses it."""
    from moto import settings as moto_settings
    from moto.core.authorization import ActionAuthenticatorMixin

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    root = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "root",
            "aws_secret_access_key": "root"}
    iam = boto3.client("iam", **root)
    iam.create_user(UserName="runner")
    iam.put_user_policy(UserName="runner", PolicyName="read-silo", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="runner")["AccessKey"]
    client = boto3.client("s3", **root)
    client.create_bucket(Bucket=BUCKET)
    data = table()
    for k, body in {"data/d.parquet": parquet_bytes(data), "data/d.csv": csv_bytes(data),
                    "data/wrongkey/d.parquet": parquet_bytes(data),
                    "private/d.parquet": parquet_bytes(data),
                    "database/d.parquet": parquet_bytes(data)}.items():
        client.put_object(Bucket=BUCKET, Key=k, Body=body)
    previous = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # from now on every request is authenticated
    ActionAuthenticatorMixin.request_count = 0
    signed = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=key["AccessKeyId"],
                          aws_secret_access_key=key["SecretAccessKey"])
    try:
        yield S3(endpoint, key["AccessKeyId"], key["SecretAccessKey"], signed)
    finally:
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = previous
        server.stop()


def cli(*args: str, env: dict[str, str] | None = None, check: bool = True
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jupyter_fed.cli", *args], capture_output=True,
                          text=True, check=check, timeout=120, env={**os.environ, **(env or {})})


@dataclass
class Runner:
    proc: RunnerProcess
    home: Path
    root: Path
    builder_token: str

    def admin(self) -> Any:
        return self.proc.http(timeout=60)  # a registration reads the whole object

    def register(self, name: str, path: str, **fields: Any) -> Any:
        with self.admin() as http:
            return http.post("/v1/datasets", json={"name": name, "path": path, **fields})


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory, s3: S3) -> Iterator[Runner]:
    """``runner init --data-root FOLDER --data-root s3://silo/data/``; the runner's endpoint and
    credentials in its environment, and (in runner.json) a wrong secret for one sub-prefix."""
    root = tmp_path_factory.mktemp("objstore-data")
    data = table()
    pq.write_table(data, root / "d.parquet", row_group_size=ROW_GROUP)
    pacsv.write_csv(data, root / "d.csv")
    home = tmp_path_factory.mktemp("objstore-runner") / "home"
    out = cli("runner", "init", "--home", str(home), "--name", "objstore", "--data-root", str(root),
              "--data-root", PREFIX).stdout
    token = out.strip().splitlines()[-1]
    settings = json.loads((home / "runner.json").read_text())
    assert settings["data_uri_prefixes"] == [PREFIX]
    settings["storage_options"] = {PREFIX + "wrongkey/": {"key": s3.key, "secret": "not-the-key"}}
    settings["warm_workers"] = 1
    (home / "runner.json").write_text(json.dumps(settings))

    proc = RunnerProcess(home, "objstore", token, env=s3.env).start()
    try:
        proc.wait_ready()
        r = Runner(proc, home, root, "")
        for name, path in {"remote": PREFIX + "d.parquet", "remote_csv": PREFIX + "d.csv",
                           "local": str(root / "d.parquet"), "local_csv": str(root / "d.csv")
                           }.items():
            assert r.register(name, path).status_code == 201, name
        r.builder_token = proc.builder_token("builder")  # granted the four datasets
        yield r
    finally:
        proc.stop()


@pytest.fixture()
def client(runner: Runner, tmp_path: Path) -> Iterator[Any]:
    """A model builder's SDK client (embedded coordinator): it knows the runner's address and a
    builder token, nothing about storage."""
    import jupyter_fed

    c = jupyter_fed.connect(embedded=True, state_dir=tmp_path / "coordinator", runners=[
        {"name": "objstore", "url": runner.proc.url, "token": runner.builder_token,
         "fingerprint": runner.proc.fingerprint}])
    yield c
    c.close()


def stats(client: Any, dataset: str, **data: Any) -> Any:
    session = client.create_analytics_session(
        "stats", "stats", "test", num_datasets=1, model_config={},
        data_config={dataset: ["x0", "x1", "x2", "g", "y"], **data}).start()
    group = SessionTaskGroup(session)
    group.add_task(client.task_builder().stats(dataset))
    assert group.start().wait(60)
    return session.results()


def glm(client: Any, dataset: str) -> Any:
    session = client.create_fl_session(name="glm", min_num_clients=1, num_rounds=20,
                                       package_name="glm",
                                       model_config={"ml_task": {"type": "logistic"}},
                                       data_config={"predictors": ["x0", "x1", "x2"],
                                                    "target": "y"}).start()
    group = SessionTaskGroup(session)
    group.add_task(client.task_builder().hfl(dataset, runner="objstore"))
    assert group.start().wait(120)
    return session.model()


# -- registration ---------------------------------------------------------------------------------
def test_an_s3_object_is_in_the_catalog_with_the_files_schema_and_rows(runner: Runner) -> None:
    with runner.admin() as http:
        remote, local = (http.get(f"/v1/datasets/{n}").json() for n in ("remote", "local"))
        remote_csv, local_csv = (http.get(f"/v1/datasets/{n}").json()
                                 for n in ("remote_csv", "local_csv"))
        catalog = http.get("/v1/datasets").text

    def schema(d: dict[str, Any]) -> Any:
        return d["num_rows"], d["num_columns"], d["format"], d["columns"]

    assert remote["num_rows"] == ROWS and schema(remote) == schema(local)
    assert schema(remote_csv) == schema(local_csv)
    assert {c["name"]: c["kind"] for c in remote["columns"]}["y"] == "binary"
    assert "s3://" not in catalog and BUCKET not in catalog  # the catalog never shows where


def test_the_budget_group_is_the_objects_uri(runner: Runner) -> None:
    """Every registration of one object — again, or as a view — shares its budget; a file://
    URI is the local file's path."""
    from jupyter_fed.runner.policy import budget_group
    from jupyter_fed.runner.store import RunnerStore

    assert runner.register("remote_again", PREFIX + "d.parquet").status_code == 201
    view = runner.register("remote_view", PREFIX + "d.parquet", view="g >= 1")
    assert runner.register("local_uri", f"file://{runner.root}/d.parquet").status_code == 201
    store = RunnerStore(runner.home / "runner.db")
    try:
        groups = {n: store.get_dataset(n)[1]["budget_group"]  # type: ignore[index]
                  for n in ("remote", "remote_again", "remote_view", "remote_csv", "local",
                            "local_uri")}
    finally:
        store.close()

    assert view.status_code == 201
    assert view.json()["num_rows"] == int(np.sum(table().column("g").to_numpy() >= 1))
    assert groups["remote"] == groups["remote_again"] == groups["remote_view"] == budget_group(
        PREFIX + "d.parquet")
    assert groups["local"] == groups["local_uri"]
    assert len({groups["remote"], groups["remote_csv"], groups["local"]}) == 3


def test_a_uri_outside_the_allow_list_is_refused_as_a_path_outside_the_roots(
        runner: Runner, tmp_path: Path) -> None:
    outside_file = tmp_path / "d.parquet"
    pq.write_table(table(), outside_file)
    cases = {"exists": f"s3://{BUCKET}/private/d.parquet",
             "missing": f"s3://{BUCKET}/private/none.parquet",
             "prefix-lookalike": f"s3://{BUCKET}/database/d.parquet",
             "other-bucket": "s3://elsewhere/data/d.parquet",
             "other-scheme": "gs://silo/data/d.parquet",
             "local": str(outside_file)}

    answers = {k: runner.register(f"out_{k.replace('-', '_')}", uri) for k, uri in cases.items()}

    for case, response in answers.items():
        body = response.json()
        assert response.status_code == 403, case
        assert body["code"] == "forbidden"
        assert body["message"] == f"{cases[case]} is outside the runner's data roots"
    # an object that exists and one that does not are refused alike: no existence oracle
    assert answers["exists"].json()["hint"] == answers["missing"].json()["hint"]


def test_the_custodian_adds_and_removes_allowed_prefixes(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    cli("runner", "init", "--home", home, "--name", "lab", "--data-root", str(tmp_path))

    cli("runner", "data-root", "add", "S3://silo/extra", "--home", home)
    added = cli("runner", "data-root", "list", "--home", home).stdout.split()
    bad = cli("runner", "data-root", "add", "ftp://silo/x/", "--home", home, check=False)
    cli("runner", "data-root", "remove", "s3://silo/extra/", "--home", home)
    removed = cli("runner", "data-root", "list", "--home", home).stdout.split()

    assert added == [str(tmp_path), "s3://silo/extra/"]  # one trailing '/': not s3://silo/extra-x
    assert bad.returncode != 0 and "must be one of s3://, gs://, az://" in bad.stderr
    assert removed == [str(tmp_path)]


def test_wrong_credentials_at_registration_are_one_line_with_a_hint(runner: Runner,
                                                                    s3: S3) -> None:
    # runner.json's storage_options for this sub-prefix carry a wrong secret
    by_config = runner.register("wrongkey", PREFIX + "wrongkey/d.parquet")
    # the custodian's shell has a wrong secret in its environment
    by_env = cli("runner", "register", "--home", str(runner.home), "wrongenv", PREFIX + "d.parquet",
                 env={**s3.env, "AWS_SECRET_ACCESS_KEY": "not-the-key"}, check=False)

    body = by_config.json()
    assert by_config.status_code == 422 and body["code"] == "invalid_dataset"
    assert body["message"].startswith(f"object storage refused access to {PREFIX}wrongkey/")
    assert "AWS_SECRET_ACCESS_KEY" in body["hint"] and "storage_options" in body["hint"]
    assert "not-the-key" not in by_config.text
    assert by_env.returncode != 0 and "Traceback" not in by_env.stderr
    lines = by_env.stderr.strip().splitlines()
    assert len(lines) == 1 and "object storage refused access" in lines[0]
    assert "AWS_SECRET_ACCESS_KEY" in lines[0]  # the hint, on the same line
    assert "not-the-key" not in by_env.stderr


def test_the_builder_cannot_pass_credentials_or_endpoints(runner: Runner, client: Any,
                                                          s3: S3) -> None:
    with runner.proc.http(runner.builder_token, timeout=60) as builder:
        registering = builder.post("/v1/datasets", json={"name": "mine", "path": PREFIX + "d.csv"})
        task = builder.post("/v1/tasks", data={"spec": json.dumps({
            "task_id": "t1", "session_id": "s1", "round": 0, "package": "stats",
            "step": "compute", "datasets": {"data": "remote"}, "params": {},
            "storage_options": {"endpoint_url": "http://127.0.0.1:9"}})})
    with runner.admin() as admin:
        extra = admin.post("/v1/datasets", json={"name": "opts", "path": PREFIX + "d.csv",
                                                 "storage_options": {"secret": "x"}})
    in_uri = runner.register("inuri", f"s3://{s3.key}:{s3.secret}@{BUCKET}/data/d.csv")
    slashed = runner.register("inuri2", f"s3://{s3.key}:se/cr+et@{BUCKET}/data/d.csv")

    assert registering.status_code == 403  # registering is the custodian's scope
    assert task.status_code == 422 and "storage_options" in task.text  # a task has no field

    assert extra.status_code == 422  # nor a registration
    assert in_uri.status_code == 422 and "must not carry credentials" in in_uri.json()["message"]
    assert s3.secret not in in_uri.text
    assert slashed.status_code == 422 and "se/cr+et" not in slashed.text  # '/' in a secret
    with pytest.raises(ConfigError, match="storage_options"):  # nor a session's configuration
        client.create_fl_session(name="glm", min_num_clients=1, num_rounds=1,
                                 package_name="glm", model_config={},
                                 data_config={"predictors": ["x0"], "target": "y",
                                              "storage_options": {"key": "x"}})


# -- reading --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_batches_stream_from_s3_exactly_as_from_the_file(runner: Runner, s3: S3, fmt: str) -> None:
    """Blocks of 256 rows cut across 400-row row groups (and csv blocks) hold the file's rows in
    the file's order, for the numeric and the as-stored (record linkage) readers alike."""
    from jupyter_fed.runner.data import LoadedDataset
    from jupyter_fed.runner.storage import ObjectPath
    from jupyter_fed.wire import DatasetInfo

    with runner.admin() as http:
        info = DatasetInfo.model_validate(http.get(f"/v1/datasets/remote{'_csv' * (fmt == 'csv')}"
                                                   ).json())
    remote = LoadedDataset(info, None, ObjectPath(f"{PREFIX}d.{fmt}", s3.options))
    local = LoadedDataset(info, None, runner.root / f"d.{fmt}")
    cols = ["x0", "g", "y"]

    blocks = list(remote.iter_batches(cols, BATCH))
    tables = list(remote.map_arrow(cols, lambda t, first: (first, t.num_rows), BATCH))

    assert len(blocks) == -(-ROWS // BATCH) and all(len(b) == BATCH for b in blocks[:-1])
    np.testing.assert_array_equal(np.concatenate(blocks),
                                  np.concatenate(list(local.iter_batches(cols, BATCH))))
    assert sum(n for _, n in tables) == ROWS and [f for f, _ in tables] == sorted(
        f for f, _ in tables)
    assert remote._loaded is None  # streamed, never read whole


def test_a_rewritten_object_is_a_new_version(s3: S3) -> None:
    from jupyter_fed.packages.alignment import DatasetVersion
    from jupyter_fed.runner.storage import ObjectPath

    uri = f"{PREFIX}versioned.parquet"
    s3.admin.put_object(Bucket=BUCKET, Key="data/versioned.parquet", Body=parquet_bytes(table(1)))
    before = DatasetVersion.of("2026-01-01", ObjectPath(uri, s3.options), ROWS)
    s3.admin.put_object(Bucket=BUCKET, Key="data/versioned.parquet", Body=parquet_bytes(table(2)))
    after = DatasetVersion.of("2026-01-01", ObjectPath(uri, s3.options), ROWS)

    assert before.etag and before.etag != after.etag
    assert after.changes(before) == ["its file was rewritten"]


# -- sessions -------------------------------------------------------------------------------------
def test_stats_on_s3_equal_stats_on_the_local_file(client: Any) -> None:
    """Exact statistics, read in 256-row batches across the row groups of an S3 object."""
    results = {name: stats(client, name, batch_rows=BATCH)
               for name in ("remote", "local", "remote_csv")}

    ref = results["local"]
    for name in ("remote", "remote_csv"):
        got = results[name]
        assert got.n == ROWS == ref.n and got.columns == ref.columns
        np.testing.assert_array_equal(got.xtx().to_numpy(), ref.xtx().to_numpy())
        np.testing.assert_array_equal(got.sums().to_numpy(), ref.sums().to_numpy())


def test_glm_trains_the_same_model_on_s3_as_on_the_local_file(client: Any) -> None:
    remote, local = glm(client, "remote"), glm(client, "local")

    np.testing.assert_allclose([remote.intercept_, *remote.coef_],
                               [local.intercept_, *local.coef_], rtol=1e-12, atol=1e-12)
    assert remote.coef_[0] > 0.5 > -0.3 > remote.coef_[1]  # it learned the generating model


# -- backends and extras ----------------------------------------------------------------------------
# dask's parquet reader calls a pandas API that pandas 3.1 deprecates; not ours to fix
@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")
def test_a_dask_backend_reads_the_object_with_the_runners_options(runner: Runner, s3: S3) -> None:
    pytest.importorskip("distributed")
    from jupyter_fed.runner import dask_backend
    from jupyter_fed.runner.data import LoadedDataset
    from jupyter_fed.runner.storage import ObjectPath
    from jupyter_fed.wire import DatasetInfo
    from jupyter_fed.wire.models import DatasetBackend

    with runner.admin() as http:
        info = DatasetInfo.model_validate(http.get("/v1/datasets/remote").json())
    info.backend = DatasetBackend(name="dask")
    cols = ["x0", "x1", "y"]
    try:
        by_dask = np.concatenate(list(LoadedDataset(info, None, ObjectPath(
            f"{PREFIX}d.parquet", s3.options)).iter_batches(cols, BATCH)))
    finally:
        dask_backend.close_clients()

    np.testing.assert_array_equal(by_dask, table().select(cols).to_pandas().to_numpy(float))


def test_a_missing_filesystem_package_names_the_extra(tmp_path: Path) -> None:
    try:
        import gcsfs  # noqa: F401
        pytest.skip("gcsfs is installed")
    except ImportError:
        pass
    from jupyter_fed.runner.process import init_runner
    from jupyter_fed.runner.registry import register_dataset
    from jupyter_fed.runner.store import RunnerStore
    from jupyter_fed.wire import DatasetRegistration

    settings, _ = init_runner(tmp_path / "home", "r", [tmp_path, "gs://bucket/data/"])
    store = RunnerStore(settings.db_path)
    try:
        with pytest.raises(ConfigError) as err:
            register_dataset(settings, store, DatasetRegistration(
                name=f"g{uuid.uuid4().hex[:6]}", path="gs://bucket/data/d.parquet"))
    finally:
        store.close()

    assert "needs gcsfs" in err.value.message and "jupyter-fed[gcs]" in err.value.hint
