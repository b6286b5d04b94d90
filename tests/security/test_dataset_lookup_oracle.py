"""``POST /v1/datasets/lookup``: a path names a registered dataset, and is never an oracle.

A builder may name data by path (``hfl(train_path=...)``). The runner answers with the registered
dataset at that path, among those the token may see; every other path — missing, present but
unregistered, outside the data roots, a folder, a traversal, a URI — gets one answer, byte for
byte, which never repeats the path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import make_token

from jupyter_fed.errors import NotFoundError
from jupyter_fed.runner.paths import lookup


def _lookup(http, path: str):
    return http.post("/v1/datasets/lookup", json={"path": path})


def test_a_registered_path_names_its_dataset_as_written_relative_or_through_a_symlink(
        vault, admin, data_root: Path) -> None:
    link = data_root / "lookup-link.parquet"
    if not link.exists():
        os.symlink(data_root / "train_silo0.parquet", link)
    token = make_token(admin, "lookup_reader", "model_builder", ["read_catalog"])

    with vault.http(token) as http:
        absolute = _lookup(http, str(data_root / "train_silo0.parquet"))
        relative = _lookup(http, "train_silo0.parquet")
        dotted = _lookup(http, str(data_root / "sub" / ".." / "test.parquet"))
        linked = _lookup(http, str(link))
        uri = _lookup(http, (data_root / "test.parquet").as_uri())

    assert absolute.status_code == 200, absolute.text
    assert absolute.json() == {"datasets": ["train"]}
    assert relative.json() == {"datasets": ["train"]}
    assert dotted.json() == {"datasets": ["test"]}
    assert linked.json() == {"datasets": ["train"]}
    assert uri.json() == {"datasets": ["test"]}


def test_every_unregistered_path_gets_the_same_answer_whether_or_not_it_exists(
        vault, admin, data_root: Path, tmp_path: Path) -> None:
    unregistered = data_root / "lookup-unregistered.parquet"
    unregistered.write_bytes((data_root / "test.parquet").read_bytes())
    outside = tmp_path / "outside.parquet"
    outside.write_bytes(b"PAR1")
    probes = [str(data_root / "no-such-file.parquet"),  # missing, inside a root
              str(unregistered),                         # present, inside a root, unregistered
              "lookup-unregistered.parquet",             # the same, relative
              str(data_root),                            # a folder
              str(outside), str(tmp_path / "missing.parquet"),  # outside: present and missing
              "/etc/passwd", "/etc/no-such-file",
              str(data_root / ".." / ".." / "etc" / "passwd"),
              "s3://bucket/train_silo0.parquet", unregistered.as_uri(), "file:///etc/passwd",
              "", "x\u0000y"]
    token = make_token(admin, "lookup_prober", "model_builder", ["read_catalog"])

    with vault.http(token) as http:
        answers = [_lookup(http, p) for p in probes]

    first = answers[0]
    assert first.status_code == 404 and first.json()["code"] == "not_found"
    assert "train, test" in first.json()["hint"] or "test, train" in first.json()["hint"]
    for probe, resp in zip(probes, answers, strict=True):
        assert (resp.status_code, resp.content) == (first.status_code, first.content), probe
        if len(probe) > 3:
            assert probe not in resp.text


def test_a_lookup_needs_read_catalog(vault, admin, data_root: Path) -> None:
    token = make_token(admin, "lookup_blind", "model_builder", ["create_session"])

    with vault.http(token) as http:
        resp = _lookup(http, str(data_root / "train_silo0.parquet"))

    assert resp.status_code == 403


def test_a_dataset_the_caller_may_not_see_is_answered_like_no_dataset(data_root: Path) -> None:
    registered = [("train", str((data_root / "train_silo0.parquet").resolve())),
                  ("test", str((data_root / "test.parquet").resolve()))]

    with pytest.raises(NotFoundError) as hidden:
        lookup("vault", [data_root], registered, str(data_root / "train_silo0.parquet"), ["test"])
    with pytest.raises(NotFoundError) as missing:
        lookup("vault", [data_root], registered, str(data_root / "nothing.parquet"), ["test"])

    assert hidden.value.to_body() == missing.value.to_body()
    assert "train" not in hidden.value.message + hidden.value.hint


def test_object_storage_uris_are_compared_as_written(data_root: Path) -> None:
    registered = [("claims", "s3://bucket/claims.parquet"), ("train", str(data_root / "x.parquet"))]

    found = lookup("r", [data_root], registered, "s3://bucket/claims.parquet", ["claims", "train"])
    with pytest.raises(NotFoundError):
        lookup("r", [data_root], registered, "s3://bucket/other.parquet", ["claims", "train"])
    with pytest.raises(NotFoundError):
        lookup("r", [data_root], registered, "s3://bucket/claims.parquet", ["train"])

    assert found == {"datasets": ["claims"]}
