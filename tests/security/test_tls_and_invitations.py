"""Transport security and the invitation flow."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import make_token

import jupyter_fed
from jupyter_fed.coordinator.urls import check_runner_url
from jupyter_fed.errors import AuthError, ConfigError, ConflictError, PermissionDenied
from jupyter_fed.wire.invitation import open_blob, seal


def test_a_pinned_fingerprint_connects_and_a_wrong_one_is_refused(vault, tmp_path) -> None:
    with jupyter_fed.connect(embedded=True, state_dir=tmp_path / "c") as client:
        ok = client.add_runner("vault", vault.url, vault.token, vault.fingerprint)
        assert ok["fingerprint"] == vault.fingerprint
        wrong = "sha256:" + "0" * 64
        with pytest.raises(AuthError, match="not the pinned"):
            client.add_runner("impostor", vault.url, vault.token, wrong)
        with pytest.raises(ConfigError, match="fingerprint"):
            client.add_runner("unpinned", vault.url, vault.token)
        assert list(client.runners()["name"]) == ["vault"]


@pytest.mark.parametrize("url", ["http://169.254.169.254", "https://metadata.google.internal",
                                 "http://[fe80::1]:80", "http://10.1.2.3:8765",
                                 "https://0.0.0.0:1"])
def test_the_coordinator_refuses_metadata_link_local_and_remote_plain_http(url) -> None:
    with pytest.raises(PermissionDenied):
        check_runner_url(url, "sha256:00")


def test_plain_http_on_a_non_loopback_address_is_refused_at_start(tmp_path, data_root) -> None:
    home = str(tmp_path / "h")
    cli = [sys.executable, "-m", "jupyter_fed.cli", "runner"]
    subprocess.run([*cli, "init", "--home", home, "--name", "x", "--data-root", str(data_root)],
                   check=True, capture_output=True)

    out = subprocess.run([*cli, "serve", "--home", home, "--host", "0.0.0.0", "--insecure-http"],
                         capture_output=True, text=True, timeout=60)

    assert out.returncode == 2
    assert "refusing plain HTTP on 0.0.0.0" in out.stderr


def _invite(vault, expires: float = 1) -> str:
    env = {**os.environ, "JUPYTER_FED_INVITE_PASSWORD": "correct horse"}
    subprocess.run([sys.executable, "-m", "jupyter_fed.cli", "runner", "user", "create", "guest",
                    "--home", str(vault.home)], capture_output=True, env=env)
    out = subprocess.run([sys.executable, "-m", "jupyter_fed.cli", "runner", "invite",
                          "--home", str(vault.home), "--user", "guest", "--scope", "read_catalog",
                          "--dataset", "train", "--dataset", "test", "--expires", str(expires),
                          "--url", vault.url],
                         capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_an_invitation_joins_once_and_keeps_its_token_server_side(vault, tmp_path) -> None:
    blob = _invite(vault)
    with jupyter_fed.connect(embedded=True, state_dir=tmp_path / "c") as client:
        with pytest.raises(AuthError, match="wrong password"):
            client.join(blob, "wrong password")

        joined = client.join(blob, "correct horse", name="guest_vault")
        datasets = client.datasets()

        assert joined["fingerprint"] == vault.fingerprint and "token" not in joined
        assert set(datasets["name"]) == {"train", "test"}
        assert "token" not in client.runners().columns
        with pytest.raises(ConflictError, match="already used"):
            client.join(blob, "correct horse", name="again")


def test_an_expired_invitation_is_refused(vault, tmp_path) -> None:
    blob = _invite(vault, expires=1 / 86400)  # one second
    time.sleep(1.5)
    with jupyter_fed.connect(embedded=True, state_dir=tmp_path / "c") as client, \
            pytest.raises(AuthError, match="expired"):
        client.join(blob, "correct horse")


def test_a_token_that_was_never_redeemed_is_useless(vault, admin) -> None:
    payload = open_blob(_invite(vault), "correct horse")
    with vault.http(payload["token"]) as http:
        resp = http.get("/v1/datasets")
    assert resp.status_code == 401 and "not yet active" in resp.json()["message"]


def test_tampered_or_foreign_blobs_are_refused() -> None:
    blob = seal({"a": 1}, "password1")
    tampered = blob[:-4] + ("AAAA" if not blob.endswith("AAAA") else "BBBB")
    with pytest.raises(AuthError):
        open_blob(tampered, "password1")
    with pytest.raises(ConfigError):
        open_blob("hello", "password1")


def test_revoked_and_expired_tokens_get_401_with_the_reason(vault, admin) -> None:
    token = make_token(admin, "shortlived", "model_builder", ["read_catalog"], 1 / 86400)
    time.sleep(1.5)
    with vault.http(token) as http:
        assert http.get("/v1/datasets").json()["message"] == "token expired"
    token = make_token(admin, "revoked", "model_builder", ["read_catalog"])
    info = admin.post("/v1/tokens/info", json={"token": token}).json()
    assert info["user"] == "revoked" and info["active"] and info["scopes"] == ["read_catalog"]
    assert admin.delete(f"/v1/tokens/{info['token_id']}").status_code == 204
    with vault.http(token) as http:
        assert http.get("/v1/datasets").json()["message"] == "token revoked"


def test_roles_limit_scopes_and_tokens_live_at_most_30_days(admin) -> None:
    admin.post("/v1/users", json={"name": "builder", "role": "model_builder"})
    too_much = admin.post("/v1/tokens", json={"user": "builder", "scopes": ["admin"]})
    too_long = admin.post("/v1/tokens", json={"user": "builder", "expires_days": 31})
    assert too_much.status_code == 403 and "does not allow admin" in too_much.json()["message"]
    assert too_long.status_code == 422 and too_long.json()["details"][0]["field"] == "expires_days"
