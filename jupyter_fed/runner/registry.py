"""Registering datasets: path checks, data requirements, default policy, how rows are read."""

from __future__ import annotations

from jupyter_fed.errors import ConflictError
from jupyter_fed.runner import data
from jupyter_fed.runner.policy import DatasetPolicy
from jupyter_fed.runner.settings import RunnerSettings
from jupyter_fed.runner.store import RunnerStore
from jupyter_fed.wire import DatasetInfo, DatasetRegistration


def register_dataset(settings: RunnerSettings, store: RunnerStore, body: DatasetRegistration,
                     policy: DatasetPolicy | None = None) -> DatasetInfo:
    """Check and record a dataset (shared by the REST route and the CLI).

    A ``backend`` (``dask``) is checked here (the extra is installed) and stored with the dataset's
    info; ``DatasetInfo`` never serialises it, so the catalog shows neither it nor the path.
    """
    if store.get_dataset(body.name) is not None:
        raise ConflictError(f"a dataset named {body.name!r} already exists on this runner",
                            "choose another name, or remove the old one first")
    path = data.resolve_under_roots(body.path, settings.data_roots)
    backend = body.backend if body.backend is not None and body.backend.name != "pyarrow" else None
    if backend is not None:
        from jupyter_fed.runner import dask_backend

        dask_backend.check_available()
    policy = policy or DatasetPolicy()
    info = data.inspect(body.name, path, body.id_columns, policy.min_count)
    info.description, info.tags, info.backend = body.description, list(body.tags), backend
    stored = info.model_dump(mode="json")
    if backend is not None:
        stored["backend"] = backend.model_dump(mode="json")
    store.put_dataset(body.name, str(path), stored, policy.model_dump())
    return info
