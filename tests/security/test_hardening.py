"""Hostile input at the runner: paths, payloads, malformed bodies; errors never carry values."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


def _register(admin, name: str, path: str) -> object:
    return admin.post("/v1/datasets", json={"name": name, "path": path})


@pytest.mark.parametrize("path", ["../../../../etc/passwd", "/etc/passwd", "%2e%2e/%2e%2e/etc/passwd",
                                  "train_silo0.parquet/../../../etc/hostname"])
def test_paths_outside_the_roots_are_refused(admin, path) -> None:
    resp = _register(admin, "escape", path)
    assert resp.status_code in (403, 422)
    assert resp.json()["code"] in ("forbidden", "invalid_dataset")


def test_a_symlink_escaping_the_root_is_refused(admin, data_root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("a,b\n" + "1,2\n" * 30)
    link = data_root / "innocent.csv"
    link.unlink(missing_ok=True)
    os.symlink(outside, link)

    resp = _register(admin, "linked", str(link))

    assert resp.status_code == 403 and "outside the runner's data roots" in resp.json()["message"]


@pytest.mark.parametrize("suffix", [".txt", ".json", ".pkl"])
def test_files_that_are_not_parquet_or_csv_are_refused(admin, data_root: Path, suffix) -> None:
    path = data_root / f"other{suffix}"
    path.write_text("a,b\n1,2\n")
    resp = _register(admin, "other", str(path))
    assert resp.status_code == 422 and "neither parquet nor csv" in resp.json()["message"]


def test_errors_never_contain_cell_values(admin, data_root: Path) -> None:
    path = data_root / "leaky.csv"
    path.write_text("x,name\n" + "".join(f"{i},SECRET{i}\n" for i in range(30)))

    resp = _register(admin, "leaky", str(path))

    assert resp.status_code == 422
    assert "SECRET" not in resp.text


def test_an_oversize_payload_is_413_even_without_a_length(admin) -> None:
    big = b"\0" * (200 * 1024)
    spec = json.dumps({"task_id": "big", "session_id": "s", "round": 0, "package": "ffnet",
                       "step": "fit", "datasets": {"train": "train"}})
    declared = admin.post("/v1/tasks", files={"spec": (None, spec), "tensors": ("t", big)})

    def chunks():
        yield b"{" + b" " * (100 * 1024)
        yield b"}"

    chunked = admin.post("/v1/users", content=chunks(), headers={"content-type": "application/json"})

    assert declared.status_code == 413 and declared.json()["code"] == "payload_too_large"
    assert chunked.status_code == 413


@pytest.mark.parametrize(("path", "body"), [("/v1/users", b"{not json"),
                                            ("/v1/datasets", b'{"name": 5}'),
                                            ("/v1/tokens", b"[]")])
def test_malformed_bodies_are_422_not_500(admin, path, body) -> None:
    resp = admin.post(path, content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 422 and resp.json()["code"] == "invalid_config"


def test_the_audit_log_records_requests_and_cannot_be_altered(vault, admin) -> None:
    admin.get("/v1/datasets")
    rows = admin.get("/v1/audit", params={"limit": 5}).json()
    assert any(r["path"] == "/v1/datasets" and r["principal"] == "admin" for r in rows)
    assert admin.delete("/v1/audit").status_code == 405

    import sqlite3

    db = sqlite3.connect(vault.home / "runner.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit")
    db.close()
