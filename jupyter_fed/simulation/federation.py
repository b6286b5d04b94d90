"""A simulated federation on a coordinator: partitions become silos, silos become one runner.

:func:`start_simulation` partitions the dataset, describes each partition as a runner would
catalog it, starts the engine's hosts with their partitions, attaches a
:class:`~jupyter_fed.simulation._runner.VirtualRunner` to the coordinator under a ``sim-…`` name,
and then does what a model builder does: creates the session (marked as a simulation), starts it
and joins one client per partition. From there the session is an ordinary one — the same plan,
engine, round policy, strategy, metrics store and events — so ``session.metrics()``, the live
panel and the sidebar's session list show it as they show any other. When it ends the engine
stops, the runner detaches, and the simulated ledger's spending goes to the session's log.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING, Any

import numpy as np

from jupyter_fed.errors import ConfigError
from jupyter_fed.runner.policy import DatasetPolicy
from jupyter_fed.simulation._data import as_table, describe
from jupyter_fed.simulation._runner import VirtualRunner
from jupyter_fed.simulation.engines import Engine, make_engine
from jupyter_fed.simulation.partition import Partitioning, partition

if TYPE_CHECKING:
    import pyarrow as pa

    from jupyter_fed.coordinator import Coordinator

__all__ = ["budget", "start_simulation"]

log = logging.getLogger("jupyter_fed.simulation")

_SPENDING: dict[str, list[dict[str, Any]]] = {}
"""Session id → the simulated ledger's spending (live while it runs, kept after it ends)."""
_RUNNING: dict[str, VirtualRunner] = {}


def budget(session_id: str) -> list[dict[str, Any]]:
    """What a simulated session spent of the simulated privacy budgets, per simulated dataset.

    The same ledger arithmetic as a runner's (``runner.policy.Ledger``), on the simulation's own
    ledger: rows carry ``simulated: True``, and no runner's budget was touched.
    """
    runner = _RUNNING.get(session_id)
    if runner is not None:
        return runner.spending()
    return list(_SPENDING.get(session_id, []))


async def start_simulation(coordinator: Coordinator, *, package_name: str,
                           model_config: dict[str, Any], data_config: dict[str, Any],
                           dataset: Any, partitions: Any = "iid", num_clients: int | None = None,
                           num_rounds: int = 10, engine: str | Engine = "local",
                           engine_options: dict[str, Any] | None = None, seed: int = 0,
                           label: str | None = None, test: Any = None,
                           policy: dict[str, Any] | None = None, name: str | None = None,
                           description: str = "", min_num_clients: int | None = None,
                           session_policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """Start a simulated session on ``coordinator``; returns its record (see ``Client.simulate``)."""
    from jupyter_fed.packages import get_package

    package = get_package(package_name)  # refuses an unknown package before any work
    dataset_policy = DatasetPolicy.model_validate(policy or {})
    table, test_table = await asyncio.to_thread(
        lambda: (as_table(dataset), as_table(test) if test is not None else None))
    scheme = "explicit" if _explicit(partitions) else str(Partitioning.parse(partitions))
    parts = await asyncio.to_thread(_partitions, table, partitions, num_clients, seed,
                                    label or data_config.get("target"),
                                    dataset_policy.minimum_rows(table.num_columns))
    n = len(parts)
    tables = {f"part-{i:03d}": table.take(p) for i, p in enumerate(parts)}
    infos = {k: describe(k, t, dataset_policy.min_count) for k, t in tables.items()}
    if test_table is not None:
        tables["test"] = test_table
        infos["test"] = describe("test", test_table, dataset_policy.min_count)
    eng = make_engine(engine, **(engine_options or {}))
    hosts = await asyncio.to_thread(eng.host_count, n)
    eng.hosts = hosts
    where = {f"part-{i:03d}": eng.place(i) for i in range(n)}
    specs = [{"tables": {k: t for k, t in tables.items() if where.get(k, h) == h},
              "datasets": {k: [k, None, infos[k].model_dump(mode="json")]
                           for k in tables if where.get(k, h) == h},
              "principal": "simulation", "threads": 1} for h in range(hosts)]
    try:
        await asyncio.to_thread(eng.start, specs)
    except BaseException:
        await asyncio.to_thread(eng.close)
        raise
    runner_name = f"sim-{secrets.token_hex(3)}"
    runner = VirtualRunner(runner_name, infos, where, eng, dataset_policy)
    coordinator.connections.attach(runner_name, runner)
    marker = {"engine": eng.name, "hosts": hosts, "num_clients": n, "partition": scheme,
              "seed": seed, "rows": [len(p) for p in parts], "runner": runner_name,
              "privacy": "simulated ledger; no runner's budget is touched"}
    try:
        rec = coordinator.create_session(
            name=name or f"simulated {package.name}", description=description,
            package_name=package_name, min_num_clients=min_num_clients or n,
            num_rounds=num_rounds, model_config=model_config, data_config=data_config,
            policy=session_policy, simulation=marker)
        sid = rec["id"]
        _RUNNING[sid] = runner
        coordinator.store.log(sid, "info", f"simulated: {n} client(s), partition {scheme}, "
                              f"{eng.name} engine on {hosts} host(s)")
        coordinator.start_session(sid)
        test_role = "test" if test_table is not None and "test" in package.roles else None
        tasks = [{"runner": runner_name, "client_name": f"client-{i:03d}",
                  "datasets": {package.roles[0]: f"part-{i:03d}",
                               **({test_role: "test"} if test_role else {})}}
                 for i in range(n)]
        await coordinator.join(sid, tasks)
    except BaseException:
        await _teardown(coordinator, runner, eng, None)
        raise
    coordinator.keep(f"simulation:{sid}", _finish(coordinator, sid, runner, eng))
    return coordinator.session(sid)


def _explicit(partitions: Any) -> bool:
    return isinstance(partitions, (list, tuple)) and not isinstance(partitions, str)


def _partitions(table: pa.Table, partitions: Any, num_clients: int | None, seed: int,
                label: str | None, min_rows: int) -> list[np.ndarray]:
    if _explicit(partitions):
        parts = [np.asarray(p, dtype=np.int64) for p in partitions]
        if num_clients is not None and num_clients != len(parts):
            raise ConfigError(f"{len(parts)} partitions given for num_clients={num_clients}",
                              "leave num_clients out with explicit partitions")
        bad = [i for i, p in enumerate(parts) if p.size and (p.min() < 0 or
                                                             p.max() >= table.num_rows)]
        if bad or not parts:
            raise ConfigError("explicit partitions must be non-empty lists of row positions of "
                              "the dataset", f"check partition(s) {bad}")
        return parts
    how = Partitioning.parse(partitions)
    if how.kind == "column":
        values: Any = _values(table, how.column)
    elif how.kind == "dirichlet":
        values = _values(table, label)
    else:
        values = np.arange(table.num_rows)
    return partition(values, num_clients, how, seed=seed, min_rows=min_rows)


def _values(table: pa.Table, column: str | None) -> np.ndarray:
    if column is None or column not in table.column_names:
        raise ConfigError(f"the dataset has no column {column!r} to partition by",
                          "name the label with label=, or data_config's target")
    return table.column(column).to_numpy()


async def _finish(coordinator: Coordinator, sid: str, runner: VirtualRunner, engine: Engine
                  ) -> None:
    try:
        await coordinator.wait(sid)
    finally:
        await _teardown(coordinator, runner, engine, sid)


async def _teardown(coordinator: Coordinator, runner: VirtualRunner, engine: Engine,
                    sid: str | None) -> None:
    if sid is not None:
        spent = runner.spending()
        _SPENDING[sid] = spent
        _RUNNING.pop(sid, None)
        charged = [r for r in spent if r.get("epsilon_spent") or r.get("spent")]
        if charged:
            coordinator.store.log(sid, "info", "simulated privacy spend (no runner's budget "
                                  f"touched): {len(charged)} dataset(s) charged")
    coordinator.connections.detach(runner.name)
    try:
        await asyncio.to_thread(engine.close)
    except Exception:  # pragma: no cover - a cluster that is already gone
        log.warning("closing the %s engine failed", engine.name, exc_info=True)
    await runner.aclose()
