"""What a package step receives at the runner and what it may hand back.

A step sees its silo's rows only through ``DatasetHandle``; it returns parameters, statistics or
aggregates in a ``StepResult``. The runner, not the step, decides what leaves: it validates the
result's shape (named arrays + JSON) before storing it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from jupyter_fed.errors import FedError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from jupyter_fed.wire import DatasetInfo


T = TypeVar("T")


class StepCancelled(FedError):
    code = "cancelled"
    status = 409


class DataFile(Protocol):
    """Where a dataset's rows are: a local ``Path``, or an object on object storage (the runner's
    ``ObjectPath``, ``s3://…``). Both name the data's version through :func:`file_version`."""

    @property
    def name(self) -> str: ...

    @property
    def suffix(self) -> str: ...

    def stat(self) -> Any: ...


def file_version(path: DataFile) -> tuple[int, int, str]:
    """``(size, mtime_ns, etag)`` of a dataset's file: what changes when its bytes are rewritten.

    An object on object storage adds its ETag (its modification time has whole seconds only); a
    local file's ETag is ``""``. One request for an object, one ``stat`` for a file.
    """
    st = path.stat()
    return int(st.st_size), int(st.st_mtime_ns), str(getattr(st, "etag", "") or "")


class DatasetHandle(Protocol):
    """Read access to one registered dataset, given to ``local.py`` steps only.

    Vertical sessions (EDA intersect, SplitNN, …) read only the rows a record-linkage (``prl``)
    session linked, through :meth:`aligned`: row ``i`` of ``handle.aligned(prl_session_id)`` is
    the ``i``-th person of the intersection, at every party, so two runners' aligned handles
    describe the same people in the same order without either ever seeing the other's ids.
    """

    info: DatasetInfo
    path: DataFile | None
    """The file or object (``None`` for rows held only in memory): what identifies the data's
    version, through :func:`file_version`."""

    @property
    def num_rows(self) -> int: ...

    def to_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame: ...

    def to_numpy(self, columns: Sequence[str], dtype: Any = np.float32) -> np.ndarray: ...

    def iter_batches(self, columns: Sequence[str], batch_rows: int = 65_536) -> Iterator[np.ndarray]:
        """``columns`` as float64 blocks (rows × columns) of ``batch_rows`` rows, in file order.

        Streams the file, so a step's memory is bounded by one block, not by the dataset.
        """
        ...

    def batches(self, columns: Sequence[str], batch_rows: int, *, seed: int | None = None,
                epoch: int = 0, buffer_rows: int | None = None, dtype: Any = np.float32
                ) -> Iterator[np.ndarray]:
        """Training batches in bounded memory: ``columns`` as blocks (rows × columns, ``dtype``)
        of ``batch_rows`` rows, the last possibly shorter.

        Parameters
        ----------
        columns
            Columns of each block, in this order (predictors and target together, so a row's
            values stay together through the shuffle).
        batch_rows
            Rows per block.
        seed, epoch
            ``seed=None``: every row once, in file order (evaluation, sums). Otherwise one
            shuffled order per ``(seed, epoch)``: the dataset's units (parquet row groups, Dask
            partitions; a csv file is one unit) in a random order, through a shuffle buffer of
            ``buffer_rows`` rows (default: the runner's ``shuffle_buffer_mb``) — see
            :mod:`jupyter_fed.runner.batches` and the README. A dataset of at most
            ``buffer_rows`` rows is shuffled uniformly.
        dtype
            The blocks' dtype.

        Memory is the buffer, one unit being read and one block, whatever the dataset's size.
        A dataset small enough (the runner's array cache, a quarter of the step's memory limit)
        is read once and kept in the worker between rounds, and the same method run on its row
        numbers gives the same order: one seed, one batch order, one trained model either way.
        """
        ...

    def fits_in_memory(self, columns: Sequence[str], dtype: Any = np.float32) -> bool:
        """Whether :meth:`batches` holds these columns in memory (else it streams them): what a
        step that needs random access to every row (balanced undersampling, DP-SGD's Poisson
        sampling) checks before it reads them whole."""
        ...

    @property
    def partitioned(self) -> bool:
        """True when a Dask cluster reads the rows (``backend: dask``): prefer :meth:`map_blocks`,
        so the workers compute partials and only those travel back."""
        ...

    def map_blocks(self, columns: Sequence[str], fn: Callable[[np.ndarray, int], T],
                   batch_rows: int = 65_536) -> Iterator[T]:
        """The map half of a map-reduce pass: ``fn(block, first_row)`` for every block, in row
        order — in this process while streaming, or on the Dask workers (``fn`` must then be a
        module-level function or a ``functools.partial`` of one). The one data path both backends
        implement."""
        ...

    def map_arrow(self, columns: Sequence[str], fn: Callable[[pa.Table, int], T],
                  batch_rows: int = 65_536) -> Iterator[T]:
        """:meth:`map_blocks` for columns as they are — identifiers (strings, integers) included:
        ``fn(table, first_row)`` on pyarrow tables of ``batch_rows`` rows, in row order (on the
        Dask workers for a Dask-backed dataset). CSV identifier columns are read as text, so
        ``00123`` keeps its zeros. For record linkage, which must read ids but never lets one
        leave the runner."""
        ...

    def aligned(self, prl_session_id: str) -> DatasetHandle:
        """The rows that record-linkage session ``prl_session_id`` linked, in aligned order.

        Position ``i`` of the returned handle is position ``i`` of the session's intersection
        (the same person at every party); its ``num_rows`` is the intersection's size. Its
        ``alignment`` attribute (:class:`~jupyter_fed.packages.alignment.Alignment`) holds the
        row positions and the alignment's ``digest``, which a step may return so that its plan
        can check that every party holds the linkage the coordinator recorded
        (``PRLResult.digests``). The alignment belongs to the principal who ran the linkage and
        to this dataset's version:

        Raises
        ------
        ConfigError
            Naming the dataset, when this principal has no alignment of it from that session
            (another user's linkage, a session that failed, a dataset the session did not link),
            or when the dataset changed (re-registered, or its file rewritten) since it was
            linked — rows would no longer be the people they were linked as.
        """
        ...


@dataclass
class StepContext:
    """Progress reporting and cooperative cancellation for a running step."""

    task_id: str
    round: int
    on_progress: Callable[[float, str], None] = lambda p, m: None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    policy: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Dataset role → the runner's policy for it (e.g. ``min_count``, the small-count threshold)."""
    cache_dir: Path | None = None
    """A folder in the runner's home where steps may keep state between tasks (e.g. answers to
    earlier queries); ``None`` outside a runner."""
    principal: str = ""
    """Who asked for the step (the token's user), for state kept per principal."""
    session_id: str = ""
    """The session the step belongs to (as the coordinator named it), for state kept per
    session, such as a record linkage's alignment."""
    output_path: Callable[[str], Path] | None = None
    """Where a step may write a file the custodian keeps (a vertical session's predictions):
    the runner resolves the path under its data roots (csv or parquet, symlinks refused) or
    raises ``PermissionDenied``; ``None`` outside a runner."""
    threads: int = 1
    """Threads a step may use for its own numeric work (the runner's ``torch_threads``): silos
    sharing a host must not oversubscribe its cores."""

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress (0..1); doubles as the heartbeat that shows the step is alive."""
        self.check_cancelled()
        self.on_progress(min(max(float(fraction), 0.0), 1.0), message)

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise StepCancelled("the step was cancelled", "")


@dataclass
class StepResult:
    """A step's output: named arrays (travel as safetensors) and JSON-able outputs."""

    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    num_examples: int = 0


StepFn = Callable[[StepContext, dict[str, DatasetHandle], dict[str, Any], dict[str, np.ndarray]],
                  StepResult]
"""Signature of a local step: (context, datasets by role, params, input tensors) -> result."""
