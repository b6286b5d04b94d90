"""Registering datasets: path checks, data requirements, default policy."""

from __future__ import annotations

from jupyter_fed.errors import ConflictError
from jupyter_fed.runner import data
from jupyter_fed.runner.policy import DatasetPolicy
from jupyter_fed.runner.settings import RunnerSettings
from jupyter_fed.runner.store import RunnerStore
from jupyter_fed.wire import DatasetInfo, DatasetRegistration


def register_dataset(settings: RunnerSettings, store: RunnerStore, body: DatasetRegistration,
                     policy: DatasetPolicy | None = None) -> DatasetInfo:
    """Check and record a dataset (shared by the REST route and the CLI)."""
    if store.get_dataset(body.name) is not None:
        raise ConflictError(f"a dataset named {body.name!r} already exists on this runner",
                            "choose another name, or remove the old one first")
    path = data.resolve_under_roots(body.path, settings.data_roots)
    info = data.inspect(body.name, path, body.id_columns)
    info.description, info.tags = body.description, list(body.tags)
    store.put_dataset(body.name, str(path), info.model_dump(mode="json"),
                      (policy or DatasetPolicy()).model_dump())
    return info
