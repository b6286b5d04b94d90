"""Who joins a session: each task's runner and datasets, checked before anything is dispatched.

Pure: it reads the catalog (schemas, never rows) and the package's declared roles and plan checks,
and either returns the clients or raises naming the field, dataset or runner at fault.
"""

from __future__ import annotations

from typing import Any

from jupyter_fed.errors import ConfigError, ConflictError, NotFoundError
from jupyter_fed.packages import get_package

__all__ = ["resolve_clients"]


def resolve_clients(rec: dict[str, Any], tasks: list[dict[str, Any]],
                    catalog: dict[str, Any]) -> list[dict[str, Any]]:
    """Each task's runner and datasets, checked against the catalog and the plan's config."""
    where: dict[str, list[str]] = {}
    infos: dict[tuple[str, str], dict[str, Any]] = {}
    for d in catalog["datasets"]:
        where.setdefault(d["name"], []).append(d["runner"])
        infos[(d["runner"], d["name"])] = d
    package = get_package(rec["package"])
    primary = package.roles[0]
    clients, taken = [], {c["client_id"] for c in rec["clients"]}
    for i, task in enumerate(tasks):
        datasets = {k: v for k, v in task["datasets"].items() if v}
        stray = sorted(set(datasets) - set(package.roles))
        if stray or primary not in datasets:
            given = ", ".join(sorted(datasets)) or "none"
            raise ConfigError(f"task {i}: {package.name} clients bring datasets as "
                              f"{' and '.join(package.roles)} ({primary} required); this task "
                              f"gives {given}",
                              "use task_builder().hfl(train, test) for training packages and "
                              ".eda(dataset) / .stats(dataset) for analytics packages")
        runner = task.get("runner")
        for role, ref in list(datasets.items()):
            # "runner/dataset" names one of several same-named datasets (names have no "/")
            named, sep, ds = ref.rpartition("/")
            if sep:
                if runner not in (None, named):
                    raise ConfigError(f"task {i}: dataset {ref!r} is on runner {named!r}, "
                                      f"but the task names runner {runner!r}",
                                      "name one runner per task")
                runner, datasets[role] = named, ds
        for role, ds in datasets.items():
            found = where.get(ds, [])
            if runner is None and len(found) > 1:
                raise ConfigError(f"dataset {ds!r} exists on several runners "
                                  f"({', '.join(found)})", "name the runner in the task "
                                  "(runner=...)")
            if (runner and runner not in found) or not found:
                elsewhere = f" (it is on {', '.join(found)})" if found else ""
                raise NotFoundError(f"no dataset {ds!r} ({role}) on "
                                    f"{'runner ' + repr(runner) if runner else 'any runner'}"
                                    f"{elsewhere}", "list the catalog with client.datasets()")
            runner = runner or found[0]
        cid = task.get("client_name") or f"{runner}/{datasets[primary]}"
        if cid in taken:
            raise ConflictError(f"client {cid!r} already joined session {rec['id']}",
                                "add each dataset once")
        taken.add(cid)
        clients.append({"client_id": cid, "runner": runner, "datasets": datasets,
                        "options": dict(task.get("options") or {})})
    plan = package.load_plan()(
        rec["config"]["model_config"], rec["config"]["data_config"], rec["num_rounds"])
    problems: list[Any] = []
    for c in clients:
        problems += plan.check_client(c["client_id"], {role: infos[(c["runner"], ds)]
                                                       for role, ds in c["datasets"].items()},
                                      c["runner"])
        problems += plan.check_options(c["client_id"], c["options"])
    problems = list(dict.fromkeys(problems))
    if problems:
        raise ConfigError("; ".join(p.error for p in problems),
                          "fix the field(s) named, or pick datasets that have those columns",
                          details=[p.as_detail() for p in problems])
    return clients
