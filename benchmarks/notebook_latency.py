"""Start-up cost in the kernel and latency from a round's end to the notebook.

Reports, from one run:

- ``import jupyter_fed`` and ``%load_ext jupyter_fed`` wall time in fresh processes (target
  < 0.3 s each) and whether torch, scikit-learn or matplotlib got imported (must not);
- for a session run by a real Jupyter server hosting the coordinator (``jupyter fed
  coordinator``) against two real runners: the delay from each round's commit in the server to
  (a) its ``round`` event arriving on the REST event stream, and (b) the ``LiveMetrics`` widget
  (default 0.5 s poll) showing it. Target < 1 s.

Run: ``python benchmarks/notebook_latency.py``; figures also go to
``benchmarks/results/notebook_latency.json``.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

HEAVY = ("torch", "sklearn", "matplotlib")
IMPORT = ("import time; t = time.perf_counter(); import jupyter_fed; d = time.perf_counter() - t\n"
          "import sys; print(d, [m for m in {h!r} if m in sys.modules])")
LOAD_EXT = ("from IPython.core.interactiveshell import InteractiveShell\n"
            "ip = InteractiveShell.instance()\n"
            "import time; t = time.perf_counter(); ip.run_line_magic('load_ext', 'jupyter_fed')\n"
            "d = time.perf_counter() - t\n"
            "import sys; print(d, [m for m in {h!r} if m in sys.modules])")


def cold(code: str, runs: int = 5) -> tuple[float, list[str]]:
    times, heavy = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code.format(h=HEAVY)], capture_output=True,
                             text=True, check=True).stdout.split(maxsplit=1)
        times.append(float(out[0]))
        heavy = json.loads(out[1].replace("'", '"'))
    return statistics.median(times), heavy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    import httpx

    import jupyter_fed
    from jupyter_fed import SessionTaskGroup
    from jupyter_fed.demo.baseline import DEMO_DATA_CONFIG
    from jupyter_fed.demo.cli import demo_model_config
    from jupyter_fed.demo.data import write_silos
    from jupyter_fed.demo.federation import LocalFederation
    from jupyter_fed.widgets import LiveMetrics

    import_s, import_heavy = cold(IMPORT)
    ext_s, ext_heavy = cold(LOAD_EXT)

    work = Path(tempfile.mkdtemp(prefix="latency-"))
    paths = write_silos(work / "data", rows=20_000)
    silos = {f"silo{i}": {f"train_silo{i}": paths[f"train_silo{i}"], "test": paths["test"]}
             for i in range(2)}
    port, token = free_port(), "bench-token"
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(work / "rt"), "JUPYTER_DATA_DIR": str(work / "d"),
           "JUPYTER_CONFIG_DIR": str(work / "c")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_fed.cli", "coordinator", f"--port={port}", "--ip=127.0.0.1",
         "--allow-root", f"--state-dir={work / 'state'}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={work}"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    sse_delays: list[float] = []
    widget_delays: list[float] = []
    try:
        headers = {"Authorization": f"token {token}"}
        for _ in range(300):
            try:
                if httpx.get(f"{url}jupyter-fed/api/v1/status", headers=headers).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with LocalFederation(work / "runners", silos, work / "data") as fed:
            client = jupyter_fed.connect(url, token=token)
            for r in fed.runners:
                client.add_runner(**r)
            arrivals: dict[int, float] = {}

            def listen() -> None:
                with httpx.stream("GET", f"{url}jupyter-fed/api/v1/events", headers=headers,
                                  timeout=None) as resp:
                    for line in resp.iter_lines():
                        if line.startswith("data:"):
                            event = json.loads(line[5:])
                            if event.get("type") == "round":
                                arrivals.setdefault(event["round"], time.time())
                                if event["round"] > 10:
                                    return

            listener = threading.Thread(target=listen, daemon=True)
            listener.start()
            time.sleep(0.5)
            session = client.create_fl_session(
                name="latency", min_num_clients=2, num_rounds=10, package_name="ffnet",
                model_config=demo_model_config(), data_config=DEMO_DATA_CONFIG).start()
            seen: dict[int, float] = {}
            panel = LiveMetrics(session)  # the widget a notebook shows, polling at its default
            panel.observe(lambda ch: seen.setdefault(ch["new"], time.time()), "current_round")
            tb = client.task_builder()
            SessionTaskGroup(session).add_task(tb.hfl("train_silo0", "test", runner="silo0")) \
                .add_task(tb.hfl("train_silo1", "test", runner="silo1")).start().wait(300, 0.2)
            listener.join(10)
            time.sleep(1.0)
            panel.close()
            for r in session.rounds():
                committed = datetime.fromisoformat(r["committed_at"]).timestamp()
                if r["round"] in arrivals and 1 <= r["round"] <= 10:
                    sse_delays.append(arrivals[r["round"]] - committed)
                if r["round"] in seen and 1 <= r["round"] <= 10:
                    widget_delays.append(seen[r["round"]] - committed)
            client.close()
    finally:
        server.terminate()
        server.wait(20)

    figures = {
        "import_jupyter_fed_seconds": round(import_s, 3), "import_heavy_modules": import_heavy,
        "load_ext_seconds": round(ext_s, 3), "load_ext_heavy_modules": ext_heavy,
        "event_stream_delay_ms_median": round(1000 * statistics.median(sse_delays), 1),
        "event_stream_delay_ms_max": round(1000 * max(sse_delays), 1),
        "live_widget_delay_ms_median": round(1000 * statistics.median(widget_delays), 1)
        if widget_delays else None,
        "live_widget_delay_ms_max": round(1000 * max(widget_delays), 1) if widget_delays else None,
        "rounds_measured": len(sse_delays),
    }
    for k, v in figures.items():
        print(f"{k:<32} {v}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "notebook_latency.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
