"""Figures for issue 12: how a runner and the Jupyter server hold up under hostile load.

Runs against whatever jupyter_fed is importable, with default runner settings, so the same
command gives the "before" figures on an older checkout (``PYTHONPATH=<old tree>``):

- unauthenticated uploads: N concurrent chunked uploads of M MiB to ``/v1/tasks`` without a
  token: the status, how much was sent before the answer, and the runner's RSS growth;
- a 1 KB request for an ffnet with ``hidden_layer_sizes: [25000, 25000]``: the answer and the
  peak RSS growth of the runner's process tree;
- fairness: one principal's two 30 s steps, then another principal's short step: its wait;
- the Jupyter server's ``/api/status`` latency while 30 wrong-password joins arrive;
- runner start-to-ready and stop times.

Run: ``python benchmarks/hostile_load.py [--uploads 4 --upload-mib 500]``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

HOSTILE = Path(__file__).resolve().parents[1] / "tests" / "security"  # the jf_hostile package
MiB = 2**20


def _tree_rss(pid: int) -> float:
    """MiB resident in ``pid`` and its descendants."""
    kids: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += kids.get(p, [])
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
    return total / MiB


class _Peak:
    def __init__(self, pid: int) -> None:
        self.pid, self.start = pid, _tree_rss(pid)
        self.peak, self._stop = self.start, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, _tree_rss(self.pid))

    def stop(self) -> tuple[float, float]:
        self._stop.set()
        self._t.join()
        return self.start, self.peak


def _upload(proc: Any, total: int, out: dict[str, Any]) -> None:
    raw = socket.create_connection(("127.0.0.1", proc.port), timeout=30)
    ctx = proc.ssl_context()
    sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1") if isinstance(ctx, ssl.SSLContext) \
        else raw
    sock.sendall(b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                 b"boundary=xx\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk, sent, t0 = b"%x\r\n" % MiB + b"a" * MiB + b"\r\n", 0, time.monotonic()
    try:
        while sent < total:
            sock.settimeout(0.0)
            try:
                data = sock.recv(64)
                out.update(status=int(data.split(b" ")[1]), sent_mib=sent // MiB)
                break
            except (BlockingIOError, ssl.SSLWantReadError):
                pass
            sock.settimeout(30)
            sock.sendall(chunk)
            sent += MiB
        else:
            sock.sendall(b"0\r\n\r\n")
            sock.settimeout(120)
            out.update(status=int(sock.recv(64).split(b" ")[1]), sent_mib=sent // MiB)
    except OSError as exc:
        out.update(error=type(exc).__name__, sent_mib=sent // MiB)
    out["seconds"] = round(time.monotonic() - t0, 2)
    sock.close()


def _submit(proc: Any, token: str, task_id: str, package: str, step: str,
            datasets: dict[str, str], params: dict[str, Any]) -> Any:
    spec = {"task_id": task_id, "session_id": "bench", "round": 1, "package": package,
            "step": step, "datasets": datasets, "params": params}
    with proc.http(token, timeout=120) as http:
        return http.post("/v1/tasks", files={"spec": (None, json.dumps(spec))})


def runner_figures(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from jupyter_fed.demo.data import write_silos
    from jupyter_fed.demo.federation import LocalFederation

    paths = write_silos(work / "data", rows=2000, clients=1)
    env = {"JUPYTER_FED_PACKAGES": "jf_hostile",
           "PYTHONPATH": os.pathsep.join([str(HOSTILE), os.environ.get("PYTHONPATH", "")])}
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    with LocalFederation(work / "r", {"r0": {"train": paths["train_silo0"]}}, work / "data",
                         env={"r0": env}) as fed:
        proc = fed.processes["r0"]
        out["runner_start_to_ready_s"] = round(time.perf_counter() - t0, 2)
        time.sleep(8)  # let the runner (and its workers) finish warming up
        # 1. unauthenticated uploads
        peak, results = _Peak(proc.pid), [{} for _ in range(args.uploads)]
        threads = [threading.Thread(target=_upload, args=(proc, args.upload_mib * MiB, r))
                   for r in results]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        before, top = peak.stop()
        out["unauthenticated_uploads"] = {"answers": results, "rss_before_mib": round(before),
                                          "rss_peak_mib": round(top)}
        # 2. a 1 KB request for a huge model
        model = {"model": {"params": {"input_size": 15, "hidden_layer_sizes": [25000, 25000],
                                      "output_size": 2}}}
        params = {"model_config": model,
                  "data_config": {"predictors": [f"x{i}" for i in range(15)], "target": "y"}}
        peak = _Peak(proc.pid)
        resp = _submit(proc, proc.token, "huge", "ffnet", "fit", {"train": "train"}, params)
        if resp.status_code == 202:
            with proc.http(timeout=300) as http:
                http.get("/v1/tasks/huge", params={"wait": 60})
        time.sleep(1)
        before, top = peak.stop()
        out["huge_model"] = {"status": resp.status_code, "code": resp.json().get("code"),
                             "rss_before_mib": round(before), "rss_peak_mib": round(top),
                             "rss_after_mib": round(_tree_rss(proc.pid))}
        # 3. fairness
        tokens = {user: proc.builder_token(user) for user in ("greedy", "patient")}
        for i in range(2):
            _submit(proc, tokens["greedy"], f"long{i}", "hostile", "nap", {"data": "train"},
                    {"seconds": 30})
        time.sleep(0.5)
        _submit(proc, tokens["patient"], "short", "hostile", "quick", {"data": "train"}, {})
        with proc.http(tokens["patient"], timeout=120) as http:
            st = http.get("/v1/tasks/short", params={"wait": 60}).json()
        out["fairness_short_step_wait_s"] = round(
            (datetime.fromisoformat(st["started_at"]) - datetime.fromisoformat(st["submitted_at"])
             ).total_seconds(), 2)
        t0 = time.perf_counter()
        proc.stop()
        out["runner_stop_s"] = round(time.perf_counter() - t0, 2)
    return out


def join_figures(work: Path) -> dict[str, Any]:
    import httpx

    from jupyter_fed.wire.invitation import seal

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token, url = "bench-token", f"http://127.0.0.1:{port}/"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(work / "rt"), "JUPYTER_CONFIG_DIR": str(work / "cf"),
           "JUPYTER_DATA_DIR": str(work / "dt")}
    proc = subprocess.Popen([sys.executable, "-m", "jupyter_fed.cli", "coordinator",
                             f"--port={port}", "--ip=127.0.0.1", "--allow-root",
                             f"--state-dir={work / 'state'}", f"--IdentityProvider.token={token}",
                             f"--ServerApp.root_dir={work}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    auth = {"Authorization": f"token {token}"}
    try:
        while True:
            try:
                if httpx.get(f"{url}api/status", headers=auth, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)

        def latencies(stop: threading.Event | None, n: int = 40) -> list[float]:
            got: list[float] = []
            with httpx.Client(headers=auth, timeout=60) as http:
                while (stop is None and len(got) < n) or (stop is not None and not stop.is_set()):
                    t0 = time.perf_counter()
                    http.get(f"{url}api/status")
                    got.append(time.perf_counter() - t0)
                    time.sleep(0.01)
            return got

        blob = seal({"v": 1, "runner": "r", "url": "https://127.0.0.1:1", "token": "jfr_x",
                     "invitation": "inv_x", "fingerprint": "sha256:" + "0" * 64}, "right one")
        rest = latencies(None)
        clients = [httpx.Client(headers=auth, timeout=120) for _ in range(30)]
        stop, busy, statuses = threading.Event(), [], []
        sampler = threading.Thread(target=lambda: busy.extend(latencies(stop)))
        sampler.start()
        joins = [threading.Thread(target=lambda c=c: statuses.append(c.post(
            f"{url}jupyter-fed/api/v1/invitations",
            json={"blob": blob, "password": "wrong"}).status_code)) for c in clients]
        for t in joins:
            t.start()
        for t in joins:
            t.join()
        stop.set()
        sampler.join()

        def ms(xs: list[float], q: float) -> float:
            return round(sorted(xs)[int(q * (len(xs) - 1))] * 1000, 1)

        return {"join_statuses": {str(c): statuses.count(c) for c in sorted(set(statuses))},
                "status_ms_at_rest": {"median": ms(rest, 0.5), "max": ms(rest, 1.0)},
                "status_ms_during_joins": {"median": ms(busy, 0.5), "p90": ms(busy, 0.9),
                                           "max": ms(busy, 1.0), "answered": len(busy)},
                "mean_ms": [round(statistics.mean(rest) * 1000, 1),
                            round(statistics.mean(busy) * 1000, 1)]}
    finally:
        proc.terminate()
        proc.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=4)
    parser.add_argument("--upload-mib", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hostile-"))
    figures = {**runner_figures(args, work), **join_figures(work)}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
