"""Reading a dataset with Dask: partitions are read, and reduced to partials, on the workers.

A dataset registered with ``backend: dask`` is read with ``dask.dataframe`` (``read_parquet`` /
``read_csv``, one partition per ``blocksize`` bytes). Two entry points serve the data layer:

- :func:`map_partitions` runs ``fn(block, first_row)`` on the workers, once per partition, and
  brings back only what ``fn`` returns: partial statistics (counts, moments) that the package then
  merges. ``first_row`` (the partition's offset in the file) is computed on the workers too, from
  the lengths of the earlier partitions, so every partition is read once.
- :func:`partition_blocks` brings the partitions' rows back to the runner as float64 blocks, for
  steps that stream rows (``LoadedDataset.iter_batches``); a few partitions are in flight at a time.

Clusters
--------
``scheduler: None`` (the default) starts one small ``LocalCluster`` per runner process on first
use: one worker of :data:`LOCAL_THREADS` threads in this process, in-process transport; the HTTP
servers Dask always starts listen on loopback only and serve no route (no dashboard, no state).

``scheduler: tcp://host:port`` connects a ``Client`` to the custodian's own cluster (one client
per address, kept for the runner's lifetime); its workers must see the dataset's file at the same
path (or reach its object, with credentials of their own) and have jupyter-fed installed, since
they import the packages' partial functions. Dask ships
those functions and their parameters to the workers with cloudpickle: the cluster is inside the
silo, and what is shipped is the runner's own package code and the step's validated configuration,
never anything decoded from the network.
"""

from __future__ import annotations

import atexit
import operator
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from jupyter_fed.errors import DatasetError, RunnerUnavailable
from jupyter_fed.runner.storage import DataPath, ObjectPath

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd
    from distributed import Client

    from jupyter_fed.wire.models import DatasetBackend

__all__ = ["LOCAL_THREADS", "BlockFn", "check_available", "close_clients", "map_arrow_partitions",
           "map_partitions", "partition_blocks", "partition_count"]

T = TypeVar("T")
BlockFn = Callable[[np.ndarray, int], Any]
"""``fn(block, first_row)``: a float64 (rows × columns) block and the index of its first row."""

LOCAL_THREADS = 4
"""Threads of the local cluster's single worker (numpy releases the GIL in the heavy parts)."""
CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a remote scheduler before the step fails."""
WINDOW = 8
"""Partitions whose rows may be in flight to the runner at once (:func:`partition_blocks`)."""

_lock = threading.Lock()
_clients: dict[str | None, tuple[Client, Any]] = {}


def check_available() -> None:
    """Refuse a ``dask`` backend, with the install command, where Dask is not installed."""
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        raise DatasetError("backend 'dask' needs dask[dataframe] and distributed on the runner",
                           "install them with: pip install 'jupyter-fed[dask]'") from None


def client_for(scheduler: str | None) -> Client:
    """The Dask client for ``scheduler`` (``None``: this process's local cluster), made once."""
    with _lock:
        held = _clients.get(scheduler)
        if held is not None and held[0].status == "running":
            return held[0]
        check_available()
        from distributed import Client, LocalCluster

        if not _clients:
            atexit.register(close_clients)
        cluster = None
        try:
            if scheduler is None:
                import dask

                # Dask always starts HTTP servers (dashboard, JSON state, metrics); here they
                # serve no route at all, and only on loopback.
                with dask.config.set({"distributed.scheduler.http.routes": [],
                                      "distributed.worker.http.routes": []}):
                    cluster = LocalCluster(n_workers=1, threads_per_worker=LOCAL_THREADS,
                                           processes=False, dashboard_address="127.0.0.1:0",
                                           worker_dashboard_address="127.0.0.1:0")
                client = Client(cluster, set_as_default=False)
            else:
                client = Client(scheduler, set_as_default=False, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise RunnerUnavailable(f"the Dask scheduler at {scheduler} did not answer: "
                                    f"{type(exc).__name__}",
                                    "start the cluster, or ask the custodian to check the "
                                    "dataset's backend") from None
        _clients[scheduler] = (client, cluster)
        return client


def close_clients() -> None:
    """Close every client (and the local cluster); the next use starts them again."""
    with _lock:
        held = list(_clients.values())
        _clients.clear()
    for client, cluster in held:
        try:
            client.close()
            if cluster is not None:
                cluster.close()
        except Exception:  # closing at exit must not mask the reason the process ends
            pass


def frame(path: DataPath, fmt: str, columns: Sequence[str], dtypes: dict[str, str],
          backend: DatasetBackend) -> dd.DataFrame:
    """The lazy Dask frame of ``columns``, typed as the pyarrow reader types them.

    CSV columns are read as the registered schema says (booleans as bool, everything else
    float64), with correctly rounded float parsing, so a block holds the same numbers either way.
    """
    import dask.dataframe as dd

    cols = list(columns)
    size = {} if backend.blocksize is None else {"blocksize": backend.blocksize}
    size.update(_storage(path, backend))
    if fmt == "parquet":
        ddf = dd.read_parquet(str(path), columns=cols, **size)
    else:
        types = {c: "bool" if dtypes.get(c) == "bool" else "float64" for c in cols}
        ddf = dd.read_csv(str(path), usecols=cols, dtype=types, **_exact_floats(), **size)
    return ddf[cols]


def _storage(path: DataPath, backend: DatasetBackend) -> dict[str, Any]:
    """fsspec options for an object on object storage: the runner's own, for its in-process
    cluster only. A remote cluster's workers find credentials in their own environment: the
    runner's secrets never travel over the scheduler's connection."""
    if isinstance(path, ObjectPath) and backend.scheduler is None and path.storage_options:
        return {"storage_options": dict(path.storage_options)}
    return {}


def _exact_floats() -> dict[str, str]:
    """pandas < 3.1 parses csv floats correctly rounded only when asked (3.1 always does)."""
    import pandas as pd

    try:
        version = tuple(int(part) for part in pd.__version__.split(".")[:2])
    except ValueError:
        version = (0, 0)
    return {} if version >= (3, 1) else {"float_precision": "round_trip"}


def as_block(part: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """A partition as a C-contiguous float64 array (rows × columns); booleans become 0/1."""
    out = np.empty((len(part), len(columns)), dtype=np.float64)
    for j, c in enumerate(columns):
        out[:, j] = part[c].to_numpy(dtype=np.float64)
    return out


def _apply(part: pd.DataFrame, columns: Sequence[str], fn: BlockFn, first_row: int) -> Any:
    return fn(as_block(part, columns), first_row)


def map_partitions(path: DataPath, fmt: str, columns: Sequence[str], dtypes: dict[str, str],
                   backend: DatasetBackend, fn: BlockFn) -> Iterator[Any]:
    """``fn(block, first_row)`` on the workers for each partition; its results, in row order.

    Closing the iterator early (a cancelled step) cancels what is still running on the workers.
    """
    import dask

    client = client_for(backend.scheduler)
    cols = list(columns)
    tasks: list[Any] = []
    first: Any = 0
    for part in frame(path, fmt, cols, dtypes, backend).to_delayed():
        tasks.append(dask.delayed(_apply)(part, cols, fn, first))
        first = dask.delayed(operator.add)(first, dask.delayed(len)(part))
    futures = client.compute(tasks)
    try:
        for future in futures:
            yield future.result()
    finally:
        client.cancel(futures)


def partition_count(path: DataPath, fmt: str, columns: Sequence[str], dtypes: dict[str, str],
                    backend: DatasetBackend) -> int:
    """Number of partitions Dask reads the dataset in (no row is read)."""
    return int(frame(path, fmt, list(columns), dtypes, backend).npartitions)


def partition_blocks(path: DataPath, fmt: str, columns: Sequence[str], dtypes: dict[str, str],
                     backend: DatasetBackend, order: Sequence[int] | None = None
                     ) -> Iterator[np.ndarray]:
    """Each partition's rows as one float64 block, read by the workers: in file order, or in
    ``order`` (partition numbers, for a shuffled epoch; see ``batches``)."""
    import dask

    client = client_for(backend.scheduler)
    cols = list(columns)
    pending: deque[Any] = deque()
    parts = frame(path, fmt, cols, dtypes, backend).to_delayed()
    try:
        for part in parts if order is None else [parts[i] for i in order]:
            pending.append(client.compute(dask.delayed(as_block)(part, cols)))
            if len(pending) >= WINDOW:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        client.cancel(list(pending))


def _apply_arrow(part: pd.DataFrame, columns: Sequence[str], fn: Callable[[Any, int], Any],
                 first_row: int) -> Any:
    import pyarrow as pa

    return fn(pa.Table.from_pandas(part[list(columns)], preserve_index=False), first_row)


def map_arrow_partitions(path: DataPath, fmt: str, columns: Sequence[str], dtypes: dict[str, str],
                         text: Sequence[str], backend: DatasetBackend,
                         fn: Callable[[Any, int], Any]) -> Iterator[Any]:
    """``fn(table, first_row)`` on the workers for each partition, columns as stored (pyarrow
    tables; CSV columns in ``text`` — identifiers — read as strings); results in row order."""
    import dask
    import dask.dataframe as dd

    client = client_for(backend.scheduler)
    cols = list(columns)
    size = {} if backend.blocksize is None else {"blocksize": backend.blocksize}
    size.update(_storage(path, backend))
    if fmt == "parquet":
        ddf = dd.read_parquet(str(path), columns=cols, **size)
    else:
        types = {c: "string" if c in text else "bool" if dtypes.get(c) == "bool" else "float64"
                 for c in cols}
        ddf = dd.read_csv(str(path), usecols=cols, dtype=types, keep_default_na=False,
                          **_exact_floats(), **size)
    tasks: list[Any] = []
    first: Any = 0
    for part in ddf[cols].to_delayed():
        tasks.append(dask.delayed(_apply_arrow)(part, cols, fn, first))
        first = dask.delayed(operator.add)(first, dask.delayed(len)(part))
    futures = client.compute(tasks)
    try:
        for future in futures:
            yield future.result()
    finally:
        client.cancel(futures)
