"""A malicious coordinator talks to real runners directly and tries to unmask one client.

It plays the coordinator's part of the protocol by hand over the runners' task API, then cheats:
asks a client for both kinds of share of one peer (first saying the peer survived, then that it
dropped out), lowers the threshold, forges the roster, reuses a round's masks, or asks a client
that sent nothing to reveal. Each is refused by the runner, which reveals nothing more. The
built-in steps are authorised like any step: scope ``create_session`` and the dataset's policy.
"""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jupyter_fed.demo.federation import LocalFederation, RunnerProcess
from jupyter_fed.wire import secagg as msg

ABC = ("silo0", "silo1", "silo2")


@pytest.fixture()
def tokens(fed10: LocalFederation) -> dict[str, str]:
    """A model builder's token on every runner (scopes of the role: create_session included)."""
    user = "mallory_" + uuid.uuid4().hex[:6]
    out = {}
    for name, proc in fed10.processes.items():
        out[name] = proc.builder_token(user)
    return out


class Evil:
    """The coordinator's side of the protocol, by hand, for clients silo0..silo2."""

    def __init__(self, fed: LocalFederation, tokens: dict[str, str]) -> None:
        self.fed, self.tokens = fed, tokens
        self.session, self.rid = "evil-" + uuid.uuid4().hex[:6], "r" + uuid.uuid4().hex[:8]
        self.n = 0

    def task(self, name: str, step: str, secagg: dict[str, Any], params: dict[str, Any] | None = None,
             dataset: str = "train", token: str | None = None) -> httpx.Response:
        """Submit one task and wait for it; the final status (or the refusal) as a response."""
        proc: RunnerProcess = self.fed.processes[name]
        self.n += 1
        spec = {"task_id": f"{self.session}.{self.n}", "session_id": self.session, "round": 1,
                "package": "secsum", "step": step, "datasets": {"data": dataset},
                "params": {**(params or {}), msg.PARAM: {"id": self.rid, "client": name, **secagg}}}
        with proc.http(token or self.tokens[name], timeout=30) as h:
            r = h.post("/v1/tasks", data={"spec": json.dumps(spec)})
            if r.status_code != 202:
                return r
            deadline = time.monotonic() + 30
            while r.json()["state"] in ("queued", "running") and time.monotonic() < deadline:
                r = h.get(f"/v1/tasks/{spec['task_id']}", params={"wait": 5})
            return r

    def ok(self, name: str, step: str, secagg: dict[str, Any], **kw: Any) -> dict[str, Any]:
        r = self.task(name, step, secagg, **kw)
        assert r.status_code in (200, 202) and r.json()["state"] == "succeeded", r.text
        return r.json()["outputs"]

    def refused(self, name: str, step: str, secagg: dict[str, Any], **kw: Any) -> str:
        r = self.task(name, step, secagg, **kw)
        body = r.json()
        if r.status_code in (200, 202):  # refused inside the worker: the task failed, saying why
            assert body["state"] == "failed", body
            body = body["error"]
        assert body["code"] in ("secagg_refused", "forbidden", "invalid_config"), body
        return body["message"]

    def setup(self, names: tuple[str, ...] = ABC, threshold: int = 2) -> dict[str, Any]:
        keys = {c: self.ok(c, msg.KEYS, {}) for c in names}
        roster = [{"client": c, "c_pk": keys[c]["c_pk"], "s_pk": keys[c]["s_pk"]} for c in names]
        sent = {c: self.ok(c, msg.SHARES, {"threshold": threshold, "roster": roster})["ciphertexts"]
                for c in names}
        return {"roster": roster, "sent": sent}

    def mask_params(self, c: str, sent: dict[str, Any], shared: tuple[str, ...] = ABC
                    ) -> dict[str, Any]:
        return {"shared": list(shared), "ciphertexts": {s: sent[s][c] for s in shared},
                "tensors": ["sums", "matrix", "noise"], "clip": 1e7, "precision": 1e-6}

    def mask(self, c: str, sent: dict[str, Any]) -> dict[str, Any]:
        return self.ok(c, "contribute", self.mask_params(c, sent),
                       params={"seed": 1, "width": 3})


def test_a_client_never_reveals_both_shares_of_one_peer(fed10: LocalFederation,
                                                         tokens: dict[str, str]) -> None:
    evil = Evil(fed10, tokens)
    sent = evil.setup()["sent"]
    for c in ABC:
        evil.mask(c, sent)
    first = evil.ok("silo0", msg.UNMASK, {"survivors": list(ABC)})  # silo2 survived, says evil
    assert set(first["self_shares"]) == set(ABC) and first["key_shares"] == {}
    assert evil.ok("silo0", msg.UNMASK, {"survivors": list(ABC)}) == first  # a retry: the same

    # ... and now silo2 "dropped out": the share of its masking key would unmask it alone.
    message = evil.refused("silo0", msg.UNMASK, {"survivors": ["silo0", "silo1"]})
    assert "both secrets of silo2" in message
    assert "already revealed its share of its self-mask seed" in message


def test_the_threshold_roster_and_masks_are_checked_by_the_client(fed10: LocalFederation,
                                                                   tokens: dict[str, str]) -> None:
    four = ("silo0", "silo1", "silo2", "silo3")
    evil = Evil(fed10, tokens)
    keys = {c: evil.ok(c, msg.KEYS, {}) for c in four}
    roster = [{"client": c, **{k: keys[c][k] for k in ("c_pk", "s_pk")}} for c in four]
    # 2 of 4 is no majority: two disjoint halves could each rebuild a different secret
    assert "strict majority" in evil.refused("silo0", msg.SHARES, {"threshold": 2,
                                                                   "roster": roster})
    forged = [dict(m) for m in roster]
    forged[0]["s_pk"], forged[1]["s_pk"] = roster[1]["s_pk"], roster[0]["s_pk"]
    assert "its own keys" in evil.refused("silo0", msg.SHARES, {"threshold": 3, "roster": forged})

    evil = Evil(fed10, tokens)
    sent = evil.setup()["sent"]
    # a client that sent no masked vector reveals nothing
    assert "no masked vector" in evil.refused("silo1", msg.UNMASK, {"survivors": list(ABC)})
    evil.mask("silo0", sent)
    # the same masks twice would give away the difference of two vectors
    message = evil.refused("silo0", "contribute", evil.mask_params("silo0", sent),
                           params={"seed": 2, "width": 3})
    assert "used already" in message
    # a survivor set without the client itself: refused
    assert "survivors must include" in evil.refused("silo0", msg.UNMASK, {"survivors": ["silo1",
                                                                                        "silo2"]})


def test_state_files_are_private_and_keep_no_secret_after_unmask(fed10: LocalFederation,
                                                                  tokens: dict[str, str]) -> None:
    evil = Evil(fed10, tokens)
    sent = evil.setup()["sent"]
    for c in ABC:
        evil.mask(c, sent)
    folder = Path(fed10.processes["silo0"].home) / "secagg"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.glob("*.json"))
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    before = {f: f.read_text() for f in files}
    evil.ok("silo0", msg.UNMASK, {"survivors": list(ABC)})
    changed = [f for f in files if f.read_text() != before[f]]
    assert len(changed) == 1
    state = json.loads(changed[0].read_text())
    assert state["status"] == "spent"
    assert not {"c_sk", "s_sk", "seed", "held"} & set(state)


def test_built_in_steps_are_authorised_like_any_step(fed10: LocalFederation,
                                                     tokens: dict[str, str]) -> None:
    proc = fed10.processes["silo5"]
    with proc.http() as admin:
        user = "reader_" + uuid.uuid4().hex[:6]
        admin.post("/v1/users", json={"name": user, "role": "model_builder"}).raise_for_status()
        reader = admin.post("/v1/tokens", json={"user": user, "scopes": ["read_catalog"]}
                            ).json()["token"]
        admin.put("/v1/datasets/test/policy", json={"allowed_packages": ["stats"]}
                  ).raise_for_status()
    evil = Evil(fed10, tokens)
    r = evil.task("silo5", msg.KEYS, {}, token=reader)
    assert r.status_code == 403  # no create_session scope
    assert "does not allow package 'secsum'" in evil.refused("silo5", msg.KEYS, {}, dataset="test")
    r = evil.task("silo5", msg.SHARES, {"threshold": 1, "roster": []})
    assert r.status_code == 422 and "invalid secure-aggregation request" in r.json()["message"]


def test_what_rides_along_is_the_next_rounds_and_checked_alike(fed10: LocalFederation,
                                                                 tokens: dict[str, str]) -> None:
    """The next round's keys ride on a masked step, its shares on an unmask step
    (``wire.secagg``): a runner makes them under the same rules as in their own steps, and a
    riding message it refuses is left out without failing the step it rides on."""
    evil = Evil(fed10, tokens)
    nxt = "n" + uuid.uuid4().hex[:8]
    r = evil.task("silo0", msg.KEYS, {}, params={msg.NEXT: {"id": nxt, "client": "silo0"}})
    assert r.status_code == 422 and "rides only on" in r.json()["message"]

    sent = evil.setup()["sent"]
    new_keys = {c: evil.ok(c, "contribute", evil.mask_params(c, sent), params={
        "seed": 1, "width": 3, msg.NEXT: {"id": nxt, "client": c}})[msg.NEXT] for c in ABC}
    assert all(set(k) == {"c_pk", "s_pk"} for k in new_keys.values())
    roster = [{"client": c, **new_keys[c]} for c in ABC]

    # a malformed riding message is a malformed request
    r = evil.task("silo0", msg.UNMASK, {"survivors": list(ABC)}, params={
        msg.NEXT: {"id": nxt, "client": "silo0", "threshold": 1, "roster": roster}})
    assert r.status_code == 422 and "_secagg_next.threshold" in r.json()["message"]
    # a forged riding roster (silo0 without its own keys): the unmask still answers, the shares
    # are left out
    forged = [dict(m) for m in roster]
    forged[0]["s_pk"], forged[1]["s_pk"] = roster[1]["s_pk"], roster[0]["s_pk"]
    low = evil.ok("silo0", msg.UNMASK, {"survivors": list(ABC)}, params={
        msg.NEXT: {"id": nxt, "client": "silo0", "threshold": 2, "roster": forged}})
    assert set(low["self_shares"]) == set(ABC) and msg.NEXT not in low
    # the current round's id as the "next" one: its state is spent, nothing rides
    same = evil.ok("silo1", msg.UNMASK, {"survivors": list(ABC)}, params={
        msg.NEXT: {"id": evil.rid, "client": "silo1", "threshold": 2, "roster": roster}})
    assert msg.NEXT not in same
    # a proper one: sealed shares for every member of the next roster
    good = evil.ok("silo2", msg.UNMASK, {"survivors": list(ABC)}, params={
        msg.NEXT: {"id": nxt, "client": "silo2", "threshold": 2, "roster": roster}})
    assert set(good[msg.NEXT]["ciphertexts"]) == set(ABC)


def test_state_files_expire(tmp_path: Path) -> None:
    from jupyter_fed.runner.secagg import RoundFiles, keys

    files = RoundFiles(tmp_path, "p", "s", ttl=60)
    keys(files, msg.KeysParams(id="r1", client="a"))
    (path,) = tmp_path.glob("*.json")
    old = time.time() - 120
    os.utime(path, (old, old))
    files.sweep()
    assert list(tmp_path.glob("*.json")) == []


@pytest.fixture(autouse=True)
def _restore_policy(fed10: LocalFederation) -> Iterator[None]:
    yield
    with fed10.processes["silo5"].http() as admin:
        admin.put("/v1/datasets/test/policy", json={})
