"""Secure aggregation's cost: a secure FedAvg round against a plain one, and what each sends.

Ten runner processes on loopback (one worker each), an ffnet of ~100,000 parameters (15 inputs,
hidden layers 310 and 310, 2 outputs), ``--rows`` rows per silo, the same seed for both
sessions, after one warm-up session of each kind. The plain session and the secure one
(``secure_aggregation: true``) run alternately, each for ``--rounds`` rounds; a round's time is
the coordinator's wall time from sending the fit step to committing the new model (for the
secure one: waiting for the keys and shares prefetched during the previous round, the masked fit
step, unmask, and the removal of the masks; the session log names each). Round 1 carries the
first, unprefetched set-up and is left out of the steady-state ratio (target: secure ≤ 1.5 ×
plain).

Communication per client and round is named from the real messages: the model sent down, the
update sent up (float32 weights; masked: one 64-bit word a value, two beyond 46 clients), and
each secure-aggregation exchange (public keys, sealed shares, the shares relayed to a client,
the reveal).

Run: ``python benchmarks/secagg.py [--clients 10 --rounds 4 --rows 2000 --repeats 2]``; a JSON
copy goes to ``benchmarks/results/secagg.json``. On a machine with fewer cores than runners the
runners share the cores, so every step waits for others: the figures are for the machine named
in the output.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from many_clients import cpu_seconds

PREDICTORS = [f"x{i}" for i in range(15)]


def model_config(secure: bool) -> dict[str, Any]:
    return {"model": {"params": {"input_size": 15, "hidden_layer_sizes": [310, 310],
                                 "output_size": 2}},
            "optimizer": {"name": "SGD", "params": {"learning_rate": 0.05}},
            "batch_size": 256, "seed": 5, "secure_aggregation": secure}


def run(fed: Any, state: Path, clients: int, rounds: int, secure: bool
        ) -> tuple[list[dict[str, Any]], list[dict[str, float]]]:
    """One session; each round's info, and each secure fit step's seconds per exchange."""
    import jupyter_fed
    from jupyter_fed import SessionTaskGroup

    client = jupyter_fed.connect(embedded=True, state_dir=state, runners=fed.runners)
    try:
        session = client.create_fl_session(
            name="bench", package_name="ffnet", num_rounds=rounds, min_num_clients=clients,
            model_config=model_config(secure),
            data_config={"predictors": PREDICTORS, "target": "y"}).start()
        tb, group = client.task_builder(), SessionTaskGroup(session)
        for i in range(clients):
            group.add_task(tb.hfl("train", "test", runner=f"silo{i}"))
        group.start().wait(1800, 0.1)
        phases = [dict((name.strip(), float(sec)) for name, sec in re.findall(r"([a-z ]+) ([\d.]+) s",
                                                                      m.split("(", 1)[1]))
                  for m in (r["message"] for r in session.logs())
                  if "secure sum of fit" in m and "(" in m]
        return [r["info"] for r in session.rounds() if "train" in r["info"]], phases
    finally:
        client.close()


def sizes(clients: int) -> dict[str, int]:
    """Bytes of each message of one round, per client, built with the real code paths."""
    import numpy as np

    from jupyter_fed.packages._secure import FEDAVG_CLIP, FEDAVG_PRECISION
    from jupyter_fed.packages.ffnet import _net
    from jupyter_fed.packages.ffnet.config import parse
    from jupyter_fed.privacy.secagg import limbs_for
    from jupyter_fed.runner.secagg import Masking, RoundFiles, keys, shares, unmask
    from jupyter_fed.wire import encode
    from jupyter_fed.wire import secagg as msg

    cfg, _ = parse(model_config(True), {"predictors": PREDICTORS, "target": "y"})
    weights = _net.initial_weights(cfg)
    plain_up = len(encode(weights))
    with tempfile.TemporaryDirectory() as tmp:
        files = RoundFiles(Path(tmp), "bench", "s", 600)
        names = [f"silo{i}/train" for i in range(clients)]
        pk = {c: keys(files, msg.KeysParams(id="r", client=c)) for c in names}
        roster = [{"client": c, **pk[c]} for c in names]
        t = (clients // 2) + 1
        sent = {c: shares(files, msg.SharesParams(id="r", client=c, threshold=t, roster=roster))
                for c in names}
        mask = {"id": "r", "client": names[0], "shared": names,
                "ciphertexts": {s: sent[s]["ciphertexts"][names[0]] for s in names},
                "tensors": list(weights), "clip": FEDAVG_CLIP, "precision": FEDAVG_PRECISION,
                "scale_by_examples": True,
                "limbs": limbs_for(clients, FEDAVG_CLIP, FEDAVG_PRECISION)}
        from jupyter_fed.packages.base import StepResult

        masked = {}
        for c in names:
            m = Masking.begin(files, {**mask, "client": c, "ciphertexts": {
                s: sent[s]["ciphertexts"][c] for s in names}})
            masked[c] = m.apply(StepResult(tensors={k: np.asarray(v) for k, v in weights.items()},
                                           num_examples=2000)).tensors
        reveal = unmask(files, msg.UnmaskParams(id="r", client=names[0], survivors=names))
    return {
        "parameters": int(sum(np.asarray(v).size for v in weights.values())),
        "model_down_bytes": plain_up,
        "plain_update_up_bytes": plain_up,
        "masked_update_up_bytes": len(encode(masked[names[0]], {"task_id": "x" * 40})),
        "keys_up_bytes": len(json.dumps(pk[names[0]])),
        "roster_down_bytes": len(json.dumps({"threshold": t, "roster": roster})),
        "sealed_shares_up_bytes": len(json.dumps(sent[names[0]])),
        "shares_relayed_down_bytes": len(json.dumps(mask["ciphertexts"])),
        "reveal_up_bytes": len(json.dumps(reveal)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from jupyter_fed.demo.data import write_silos
    from jupyter_fed.demo.federation import LocalFederation

    work = Path(tempfile.mkdtemp(prefix="secagg-bench-"))
    paths = write_silos(work / "data", rows=args.rows, clients=args.clients)
    silos = {f"silo{i}": {"train": paths[f"train_silo{i}"], "test": paths["test"]}
             for i in range(args.clients)}
    started = time.perf_counter()
    runs: dict[str, list[list[dict[str, Any]]]] = {"plain": [], "secure": []}
    phases: list[dict[str, float]] = []
    cpu: dict[str, dict[str, float]] = {"plain": {}, "secure": {}}
    with LocalFederation(work / "runners", silos, work / "data", max_workers=1,
                         warm_workers=1) as fed:
        up = time.perf_counter() - started
        for kind in ("plain", "secure"):  # warm-up: every worker imports and initialises torch
            run(fed, work / f"warm-{kind}", args.clients, 2, kind == "secure")
        for r in range(args.repeats):
            for kind in ("plain", "secure") if r % 2 == 0 else ("secure", "plain"):
                before = cpu_seconds()
                infos, found = run(fed, work / f"{kind}{r}", args.clients, args.rounds,
                                   kind == "secure")
                for k, v in cpu_seconds().items():
                    cpu[kind][k] = cpu[kind].get(k, 0.0) + v - before[k]
                runs[kind].append(infos)
                phases += found[1:]
    steady = {k: [i["duration"] for rs in v for i in rs[1:]] for k, v in runs.items()}
    local = {k: [i["local_seconds"] for rs in v for i in rs[1:]] for k, v in runs.items()}
    plain, secure = statistics.median(steady["plain"]), statistics.median(steady["secure"])
    figures = {
        "machine": f"{os.cpu_count()} cores", "clients": args.clients, "rows_per_silo": args.rows,
        "rounds": args.rounds, "repeats": args.repeats, "runners_up_seconds": round(up, 2),
        "plain_round_seconds_median": round(plain, 3),
        "secure_round_seconds_median": round(secure, 3),
        "secure_over_plain": round(secure / plain, 3),
        "plain_slowest_local_step_median": round(statistics.median(local["plain"]), 3),
        "secure_slowest_local_step_median": round(statistics.median(local["secure"]), 3),
        "plain_rounds_seconds": [round(x, 3) for x in steady["plain"]],
        "secure_rounds_seconds": [round(x, 3) for x in steady["secure"]],
        "first_round_seconds": {k: [round(rs[0]["duration"], 3) for rs in v]
                                for k, v in runs.items()},
        "secure_round_seconds_by_exchange_median": {
            name: round(statistics.median(p.get(name, 0.0) for p in phases), 3)
            for name in dict.fromkeys(k for p in phases for k in p)},
        # CPU seconds per round (whole sessions, set-up and final evaluation included) of this
        # process (the coordinator), the runners and their workers: on fewer cores than
        # runners, what the round's wall time is made of
        "cpu_seconds_per_round": {kind: {k: round(v / (args.rounds * args.repeats), 3)
                                         for k, v in c.items()} for kind, c in cpu.items()},
        "communication_per_client_and_round": sizes(args.clients),
    }
    for key, value in figures.items():
        print(f"{key:36} {value}")
    out = Path(__file__).parent / "results" / "secagg.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
