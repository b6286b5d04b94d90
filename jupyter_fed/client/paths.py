"""Tasks that name their data by path (``hfl(train_path=...)``), resolved to registered datasets.

A runner reads registered datasets only. A task builder that is given a path records it under the
task's ``"paths"``; before the task joins a session, each path is sent to the task's runner
(``POST /v1/datasets/lookup``, scope ``read_catalog``), which answers with the registered
dataset(s) at that path among those the token may see, or refuses, listing the names it may use.
Nothing is ever read from a path: it is only another way of naming a dataset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jupyter_fed.errors import ConfigError, FedError, NotFoundError

if TYPE_CHECKING:
    from jupyter_fed.client.client import Client

__all__ = ["resolve_task"]


def _at(client: Client, runner: str, path: str) -> list[str]:
    found = client._backend.runner_admin(runner, "POST", "/v1/datasets/lookup", {"path": path})
    return list(found.get("datasets", [])) if isinstance(found, dict) else []


def _find(client: Client, runner: str | None, path: str, field: str) -> tuple[str, list[str]]:
    """``(runner, names)`` of the datasets at ``path`` on ``runner`` (or on whichever runner)."""
    if runner is not None:
        return runner, _at(client, runner, path)
    hits: list[tuple[str, list[str]]] = []
    refusals: list[str] = []
    for row in client._backend.runners():
        try:
            names = _at(client, row["name"], path)
        except NotFoundError as exc:
            refusals.append(f"{row['name']}: {exc.hint}")
            continue
        except FedError as exc:
            refusals.append(f"{row['name']}: {exc.message}")
            continue
        hits.append((row["name"], names))
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise ConfigError(f"{field} names registered datasets on several runners "
                          f"({', '.join(r for r, _ in hits)})",
                          "build the task with task_runner_id= (or runner=) to pick one",
                          details=[{"field": f"{field}", "error": "ambiguous"}])
    raise NotFoundError(f"{field}: no runner has a dataset registered at that path that this "
                        "connection may use; runners read registered datasets only",
                        "; ".join(refusals) or "no runner is connected",
                        details=[{"field": f"{field}", "error": "not registered"}])


def _resolve(client: Client, runner: str | None, field: str, path: str,
             named: str | None) -> tuple[str, str]:
    """``(runner, dataset name)`` for one path; ``named`` is a dataset name given alongside."""
    try:
        where, names = _find(client, runner, path, field)
    except NotFoundError as exc:
        if runner is None:
            raise
        raise NotFoundError(f"{field}: {exc.message}", exc.hint,
                            details=[{"field": f"{field}", "error": "not registered"}]
                            ) from None
    if named is not None:
        if named in names:
            return where, named
        raise ConfigError(f"{field} is registered on runner {where!r} as "
                          f"{' or '.join(map(repr, names))}, not {named!r}",
                          "use the registered name (in the task and in the session's "
                          "data_config), or leave the name out",
                          details=[{"field": f"{field}", "error": "names another dataset"}])
    if len(names) != 1:
        raise ConfigError(f"{field} holds several registered datasets on runner {where!r}: "
                          f"{', '.join(names)}", "name the one you mean (dataset_name=...)",
                          details=[{"field": f"{field}", "error": "ambiguous"}])
    return where, names[0]


def resolve_task(client: Client, task: dict[str, Any]) -> dict[str, Any]:
    """``task`` with every path in ``task["paths"]`` (``{role: [argument, path]}``) replaced by
    its registered dataset's name.

    A task may name a dataset and give its path too (``eda(dataset_name=..., dataset_path=...)``):
    the path must then hold that dataset. All paths of one task must be on one runner.
    """
    paths = task.get("paths") or {}
    if not paths:
        return task
    out = {k: v for k, v in task.items() if k != "paths"}
    datasets = dict(out.get("datasets") or {})
    runner = out.get("runner")
    for role, (field, path) in paths.items():
        where, name = _resolve(client, runner, field, str(path), datasets.get(role))
        if runner is not None and where != runner:  # pragma: no cover - _find keeps the runner
            raise ConfigError("a task's paths must be on one runner", "")
        runner, datasets[role] = where, name
    out["runner"], out["datasets"] = runner, datasets
    return out
