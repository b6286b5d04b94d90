"""Starting sessions over the three fault-injection runners."""

from __future__ import annotations

import time
from typing import Any

from helpers import DATA_CONFIG, model_config

from jupyter_fed import SessionTaskGroup


def start(client: Any, names: tuple[str, ...] = ("silo0", "silo1", "silo2"), *, rounds: int = 3,
          min_clients: int = 2, strategy: dict[str, Any] | None = None, **policy: Any) -> Any:
    cfg = model_config(strategy=strategy) if strategy else model_config()
    session = client.create_fl_session(
        name="faults", min_num_clients=min_clients, num_rounds=rounds, package_name="faulty_ffnet",
        model_config=cfg, data_config=DATA_CONFIG, **policy).start()
    tb = client.task_builder()
    group = SessionTaskGroup(session)
    for name in names:
        group.add_task(tb.hfl(f"train_{name}", "test", runner=name))
    group.start()
    return session


def wait_for_round(session: Any, rnd: int, timeout: float = 60) -> None:
    """Block until round ``rnd`` has been committed (``current_round >= rnd``)."""
    deadline = time.monotonic() + timeout
    while session.info()["current_round"] < rnd:
        assert session.status() in ("pending", "running"), session.info()["error"]
        assert time.monotonic() < deadline, "round never committed"
        time.sleep(0.02)


def dropped_by_round(session: Any) -> dict[int, list[str]]:
    return {r["round"]: r["info"].get("dropped", []) for r in session.rounds()
            if "duration" in r["info"]}
