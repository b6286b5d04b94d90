"""The runner's data layer: where datasets may live, what they must look like, and reading them.

This module and the packages' ``local.py`` are the only code that reads rows. Reports about a bad
dataset name columns and reasons, never cell values.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from jupyter_fed.errors import DatasetError, FedError, PermissionDenied
from jupyter_fed.packages.base import file_version
from jupyter_fed.runner import storage, streaming
from jupyter_fed.runner.storage import DataPath, ObjectPath
from jupyter_fed.runner.streaming import FORMATS
from jupyter_fed.wire.models import NAME_RE, ColumnInfo, DatasetInfo

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from jupyter_fed.runner.aligned import AlignmentScope
    from jupyter_fed.runner.settings import RunnerSettings


T = TypeVar("T")


def resolve_dataset(path: str | Path, settings: RunnerSettings, *, reach: bool = True) -> DataPath:
    """Where a dataset may be read from: a file under a data root or an object under an allowed
    URI prefix (``s3://``, ``gs://``, ``az://``; ``file://`` is a local path), else refused.

    A URI is judged as written against ``settings.data_uri_prefixes`` before any request leaves
    the runner: one outside every prefix is refused with the same 403 as a path outside every
    root, whether or not it exists. ``reach=False`` skips the request that checks an object
    exists (the executor's per-step check: the worker reads it anyway); local paths are always
    resolved in full.
    """
    text = str(path)
    if "\x00" in text or not text.strip():
        raise DatasetError("the dataset path is empty or contains a NUL character",
                           "give the path of a parquet or csv file under a data root")
    if not storage.is_uri(text):
        return resolve_under_roots(path, settings.data_roots)
    if text.lower().startswith("file://"):
        return resolve_under_roots(storage.file_uri_path(text), settings.data_roots)
    uri = storage.allowed_uri(text, settings.data_uri_prefixes)
    if uri is None:
        raise _outside(text)
    if storage.location(uri).suffix.lower() not in FORMATS:
        raise DatasetError(f"{uri} is neither parquet nor csv",
                           "convert the data to parquet (recommended) or csv")
    found = ObjectPath(uri, storage.options_for(uri, settings.storage_options))
    if reach:
        found.stat()
    return found


def resolve_under_roots(path: str | Path, roots: Sequence[Path]) -> Path:
    """Resolve ``path`` (symlinks included) and insist it lies under one of ``roots``.

    The path is first judged as written (made absolute, ``..`` collapsed) without touching the
    file system: one outside every root is refused with the same 403 whether or not it exists, so
    the answer cannot be used to probe the machine's files. Only a path inside a root is then
    resolved, and its real location (after symlinks) checked again.
    """
    text = str(path)
    if "\x00" in text or not text.strip():
        raise DatasetError("the dataset path is empty or contains a NUL character",
                           "give the path of a parquet or csv file under a data root")
    raw = Path(text)
    if not raw.is_absolute() and roots:
        raw = roots[0] / raw
    lexical = Path(os.path.normpath(raw.absolute()))
    real_roots = [_real(root) for root in roots]
    if not any(lexical.is_relative_to(root) or lexical.is_relative_to(real)
               for root, real in zip(roots, real_roots, strict=True)):
        raise _outside(text)
    try:
        real = raw.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise DatasetError(f"no file at {text}", "give a path to an existing parquet or csv file") \
            from None
    if not any(real.is_relative_to(root) for root in real_roots):
        raise _outside(text)  # a symlink inside a root that points out of it
    if not real.is_file():
        raise DatasetError(f"{text} is not a file", "give a parquet or csv file")
    if real.suffix.lower() not in FORMATS:
        raise DatasetError(f"{text} is neither parquet nor csv",
                           "convert the data to parquet (recommended) or csv")
    return real


def resolve_output_path(path: str | Path, roots: Sequence[Path]) -> Path:
    """Where a step may write the file ``path`` names: under one of ``roots``, csv or parquet.

    The same rules as :func:`resolve_under_roots` — judged as written first, so a path outside
    every root is refused alike whether or not it exists; then the real folder (after symlinks,
    created inside its root if missing) checked again — and the file itself must not be a
    symlink or a folder. A file already there is replaced (atomically, by the step).
    """
    text = str(path)
    if "\x00" in text or not text.strip():
        raise DatasetError("the output path is empty or contains a NUL character",
                           "give a .csv or .parquet path under a data root")
    raw = Path(text)
    if not raw.is_absolute() and roots:
        raw = roots[0] / raw
    lexical = Path(os.path.normpath(raw.absolute()))
    real_roots = [_real(root) for root in roots]
    if not any(lexical.is_relative_to(root) or lexical.is_relative_to(real)
               for root, real in zip(roots, real_roots, strict=True)):
        raise _outside(text)
    if lexical.suffix.lower() not in FORMATS:
        raise DatasetError(f"{text} is neither .parquet nor .csv", "name a .csv or .parquet file")
    lexical.parent.mkdir(parents=True, exist_ok=True)
    folder = lexical.parent.resolve()
    if not any(folder.is_relative_to(root) for root in real_roots):
        raise _outside(text)  # a symlinked folder inside a root that points out of it
    target = folder / lexical.name
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise PermissionDenied(f"{text} is a link or a folder", "name a plain file")
    return target


def _real(root: Path) -> Path:
    try:
        return root.resolve()
    except (OSError, RuntimeError):
        return Path(os.path.normpath(root.absolute()))


def _outside(path: str) -> PermissionDenied:
    if storage.is_uri(path):
        return PermissionDenied(f"{path} is outside the runner's data roots",
                                "register objects under an allowed prefix, or add one with "
                                "`jupyter-fed runner data-root add s3://bucket/prefix/` (then "
                                "restart the runner)")
    return PermissionDenied(f"{path} is outside the runner's data roots",
                            "move the file under a data root, or add its folder with "
                            "`jupyter-fed runner data-root add FOLDER` (then restart the runner)")


def read_table(path: DataPath) -> pa.Table:
    """The whole file or object as one table (parquet, or csv with types inferred)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        with storage.source(path) as src:
            if FORMATS[path.suffix.lower()] == "parquet":
                return pq.read_table(src)
            return pacsv.read_csv(src)
    except OSError as exc:
        if isinstance(path, ObjectPath):  # said in the storage's terms, not pyarrow's
            raise unreadable(path, exc) from None
        raise


def unreadable(path: DataPath, exc: Exception) -> FedError:
    """A file pyarrow could not read, or an object storage refused: by name and error type."""
    if isinstance(path, ObjectPath) and not isinstance(exc, ValueError):  # ArrowInvalid is one
        return storage.storage_error(exc, path.uri)
    return DatasetError(f"could not read {path.name}: {type(exc).__name__}",
                        "check that the file is a valid parquet or csv file")


MAX_LABELS = 1000
"""Integer columns with more distinct values than this are never described as class labels."""


def column_kind(col: Any, min_count: int) -> tuple[str, int | None]:
    """``(kind, classes)`` of a numeric arrow column (see ``ColumnInfo``); reads no row out.

    A column is a ``label`` column only if its values are exactly ``0..m`` and each is held by at
    least ``min_count`` rows, so publishing ``classes = m + 1`` reveals no rare value (an age
    column whose maximum 97 belongs to one person is just ``integer``).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_boolean(col.type):
        return "binary", 2
    if len(col) == 0:
        return "numeric", None
    x = col.to_numpy()
    if not np.array_equal(x, np.round(x)):
        return "numeric", None
    lo, hi = pc.min_max(col).values()
    lo, hi = lo.as_py(), hi.as_py()
    if lo >= 0 and hi <= 1:
        counts = np.bincount(x.astype(np.int64), minlength=2)
        return "binary", 2 if counts.min() >= min_count else None
    if lo < 0 or hi >= MAX_LABELS:
        return "integer", None
    counts = np.bincount(x.astype(np.int64), minlength=int(hi) + 1)
    if (counts >= min_count).all():
        return "label", int(hi) + 1
    return "integer", None


def inspect(name: str, path: DataPath, id_columns: Sequence[str] = (), min_count: int = 10,
            rows: Callable[[pa.Table], pa.Table] | None = None) -> DatasetInfo:
    """Infer the schema and check the data requirements; refuse with a per-column report.

    ``min_count`` is the dataset's small-count threshold, below which a class is too rare for its
    label to be named in the catalog. ``rows`` selects the rows of a view (see ``views.py``).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from jupyter_fed.runner.store import now

    try:
        table = read_table(path)
    except DatasetError:
        raise
    except (pa.ArrowInvalid, OSError) as exc:
        raise unreadable(path, exc) from None
    if rows is not None:
        table = rows(table)
    problems: list[dict[str, str]] = []
    columns: list[ColumnInfo] = []
    for missing in sorted(set(id_columns) - set(table.column_names)):
        problems.append({"column": missing, "problem": "declared as an id column but absent"})
    for field in table.schema:
        col = table.column(field.name)
        is_id = field.name in id_columns
        if not NAME_RE.match(field.name):
            problems.append({"column": field.name, "problem": _NAME_RULE})
        if col.null_count:
            problems.append({"column": field.name, "problem": "null values"})
        numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type) or \
            pa.types.is_boolean(field.type)
        if not numeric and not is_id:
            problems.append({"column": field.name, "problem": f"type {field.type} is not numeric "
                             "(only declared id columns may be non-numeric)"})
        elif pa.types.is_floating(field.type):
            bad = pc.sum(pc.invert(pc.is_finite(col))).as_py() or 0
            if bad:
                problems.append({"column": field.name, "problem": "NaN or infinite values"})
        kind, classes = ("id", None) if is_id or not numeric or col.null_count else \
            column_kind(col, min_count)
        columns.append(ColumnInfo(name=field.name, dtype=str(field.type),
                                  role="id" if is_id else "feature", kind=kind, classes=classes))
    if problems:
        raise DatasetError(f"dataset {name!r} does not meet the data requirements: "
                           f"{_grouped(problems)}", _hints(problems), details=problems)
    return DatasetInfo(name=name, format=FORMATS[path.suffix.lower()], num_rows=table.num_rows,
                       num_columns=table.num_columns, columns=columns, registered_at=now())


_NAME_RULE = "name must start with a letter and use only letters, digits, '-' and '_'"
_HINTS = {"name must": "rename those columns", "null": "impute or drop the nulls",
          "not numeric": "encode text as numbers, or declare identifier columns with --id-column",
          "NaN": "impute or drop the NaN/infinite values",
          "id column": "fix the --id-column names"}


def _grouped(problems: list[dict[str, str]]) -> str:
    """Problems sharing a reason said once, with their columns: not one rule per column."""
    by_reason: dict[str, list[str]] = {}
    for p in problems:
        by_reason.setdefault(p["problem"], []).append(p["column"])
    parts = []
    for reason, cols in by_reason.items():
        shown = ", ".join(repr(c) for c in cols[:8]) + (f" and {len(cols) - 8} more"
                                                       if len(cols) > 8 else "")
        parts.append(f"column{'s' if len(cols) > 1 else ''} {shown}: {reason}")
    return "; ".join(parts)


def _hints(problems: list[dict[str, str]]) -> str:
    found = [hint for key, hint in _HINTS.items() if any(key in p["problem"] for p in problems)]
    return "; ".join(dict.fromkeys(found)) or "fix the columns named"


class TableCache:
    """A few recently used tables, keyed by file identity, so rounds do not re-read files."""

    def __init__(self, max_tables: int = 8) -> None:
        self._tables: OrderedDict[tuple[Any, ...], pa.Table] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_tables

    @staticmethod
    def _key(path: DataPath) -> tuple[Any, ...]:
        return (str(path), *file_version(path))

    def peek(self, path: DataPath) -> pa.Table | None:
        """The cached table of ``path`` if it is in memory already, without reading the file."""
        key = self._key(path)
        with self._lock:
            return self._tables.get(key)

    def get(self, path: DataPath) -> pa.Table:
        key = self._key(path)
        with self._lock:
            if key in self._tables:
                self._tables.move_to_end(key)
                return self._tables[key]
        table = read_table(path)
        with self._lock:
            self._tables[key] = table
            while len(self._tables) > self._max:
                self._tables.popitem(last=False)
        return table


class LoadedDataset:
    """The ``DatasetHandle`` a package step reads its rows through.

    Parameters
    ----------
    info
        The registered schema.
    table
        The whole table when it is already in memory; ``None`` to read it only if a step asks for
        it (``to_pandas`` / ``to_numpy``), through ``loader``.
    path
        The file (or object on object storage), so that :meth:`iter_batches` can stream it
        without materialising the table.
    loader
        Reads ``path`` into a table (the runner passes its ``TableCache.get``); default: read it.
    alignments
        Where the step's principal keeps record-linkage alignments (``cache_dir``, principal),
        for :meth:`aligned`; ``None`` outside a runner's worker.
    """

    whole_file = True
    """The rows are the whole file, in file order (not a view's or an alignment's selection):
    :meth:`batches` may then read them unit by unit (parquet row groups)."""
    memory_budget: int | None = None
    """Bytes of decoded rows :meth:`batches` may hold in memory at once; more are streamed.
    ``None``: no limit (a plain handle reads its rows into memory, as it always did)."""
    shuffle_buffer_bytes: int = 64 * 2**20
    """The shuffle buffer's size when streaming (see ``batches``)."""

    def __init__(self, info: DatasetInfo, table: pa.Table | None, path: DataPath | None = None,
                 loader: Callable[[DataPath], pa.Table] | None = None,
                 alignments: AlignmentScope | None = None) -> None:
        if table is None and path is None:
            raise ValueError("LoadedDataset needs a table or a path")
        self.info = info
        self._loaded = table
        self.path = path
        self._loader = loader or read_table
        self.alignments = alignments

    @property
    def _table(self) -> pa.Table:
        if self._loaded is None:
            assert self.path is not None
            self._loaded = self._loader(self.path)
        return self._loaded

    @property
    def num_rows(self) -> int:
        return self._loaded.num_rows if self._loaded is not None else self.info.num_rows

    def to_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        return (self._table.select(list(columns)) if columns else self._table).to_pandas()

    def to_numpy(self, columns: Sequence[str], dtype: Any = np.float32) -> np.ndarray:
        columns = self._known(columns)
        out = np.empty((self._table.num_rows, len(columns)), dtype=dtype)
        for j, c in enumerate(columns):
            try:
                out[:, j] = self._table.column(c).to_numpy()
            except (ValueError, TypeError):  # its text would quote the cell: name the column
                raise DatasetError(f"dataset {self.info.name!r}: column {c!r} holds a value that is "
                                   "not a number (the file changed since it was registered?)",
                                   "fix the file, or register it again") from None
        return out

    @property
    def partitioned(self) -> bool:
        """True when a Dask cluster reads this dataset (``backend: dask``): steps that can should
        use :meth:`map_blocks`, so that the workers compute partials and only those come back."""
        backend = self.info.backend
        return backend is not None and backend.name == "dask" and self.path is not None

    def iter_batches(self, columns: Sequence[str], batch_rows: int = 65_536) -> Iterator[np.ndarray]:
        """Stream ``columns`` as float64 blocks of ``batch_rows`` rows (the last may be shorter).

        Memory stays bounded by one block whatever the file's size: parquet is read row group by
        row group, csv with pyarrow's streaming reader. A table already in memory is sliced.
        Rows come in file order, so row ``i`` of the concatenated blocks is row ``i`` of the data.
        A Dask-backed dataset's partitions are read by the workers and cut into the same blocks.
        """
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        columns = self._known(columns)
        if self.partitioned:
            from jupyter_fed.runner import dask_backend

            assert self.path is not None and self.info.backend is not None
            yield from streaming.rebatch(dask_backend.partition_blocks(
                self.path, FORMATS[self.path.suffix.lower()], columns, self._dtypes(),
                self.info.backend), batch_rows, len(columns))
            return
        if self._loaded is not None or self.path is None:
            table = self._table.select(columns)
            for start in range(0, table.num_rows, batch_rows):
                yield streaming.block(table.slice(start, batch_rows), len(columns))
            return
        yield from streaming.rebatch(streaming.stream(self.path, columns, batch_rows,
                                                      self._dtypes()), batch_rows, len(columns))

    def batches(self, columns: Sequence[str], batch_rows: int, *, seed: int | None = None,
                epoch: int = 0, buffer_rows: int | None = None, dtype: Any = np.float32
                ) -> Iterator[np.ndarray]:
        """``columns`` as blocks of ``batch_rows`` rows of ``dtype`` (the last may be shorter):
        shuffled by a seeded method that reads the rows one unit at a time (``seed``, one order
        per ``epoch``), or in file order (``seed=None``). See ``DatasetHandle.batches`` and
        :mod:`jupyter_fed.runner.batches` for the method and its memory bound.
        """
        from jupyter_fed.runner import batches

        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        return batches.read(self, self._known(columns), batch_rows, seed=seed, epoch=epoch,
                            buffer_rows=buffer_rows, dtype=dtype)

    def fits_in_memory(self, columns: Sequence[str], dtype: Any = np.float32) -> bool:
        """Whether :meth:`batches` holds ``columns`` in memory (else it streams them): rows
        already loaded, or within :attr:`memory_budget`; never for a Dask-backed dataset."""
        if self._loaded is not None or self.path is None:
            return True
        if self.partitioned:
            return False
        return self.memory_budget is None or \
            self.num_rows * len(columns) * np.dtype(dtype).itemsize <= self.memory_budget

    def block(self, columns: Sequence[str], dtype: Any = np.float32) -> np.ndarray:
        """``columns`` of every row as one array, which the caller must not modify (a cached
        handle hands out its kept copy)."""
        return self.to_numpy(columns, dtype)

    def map_blocks(self, columns: Sequence[str], fn: Callable[[np.ndarray, int], T],
                   batch_rows: int = 65_536) -> Iterator[T]:
        """The map half of a map-reduce pass: ``fn(block, first_row)`` for every block, in row order.

        Parameters
        ----------
        columns
            Columns of ``block`` (float64, rows × columns, as :meth:`iter_batches` gives them).
        fn
            Called with each block and the index of its first row in the dataset; returns a partial
            result (counts, moments) that the caller merges. Blocks are ``batch_rows`` rows here;
            on a Dask-backed dataset ``fn`` runs on the workers, once per partition of whatever
            size, and only its results travel back, so results must not depend on the blocking
            beyond rounding, and ``fn`` must be picklable (a module-level function, or a
            ``functools.partial`` of one).
        batch_rows
            Rows per block when this process reads the file.
        """
        columns = self._known(columns)
        if self.partitioned:
            from jupyter_fed.runner import dask_backend

            assert self.path is not None and self.info.backend is not None
            yield from dask_backend.map_partitions(
                self.path, FORMATS[self.path.suffix.lower()], columns, self._dtypes(),
                self.info.backend, fn)
            return
        first = 0
        for block in self.iter_batches(columns, batch_rows):
            yield fn(block, first)
            first += len(block)

    def map_arrow(self, columns: Sequence[str], fn: Callable[[pa.Table, int], T],
                  batch_rows: int = 65_536) -> Iterator[T]:
        """``fn(table, first_row)`` over pyarrow tables of ``columns`` as they are (identifier
        columns included, CSV identifiers as text), in row order; on the Dask workers for a
        Dask-backed dataset. See ``DatasetHandle.map_arrow``."""
        columns = self._columns_as_is(columns)
        text = [c.name for c in self.info.columns if c.role == "id" and c.name in columns]
        if self.partitioned:
            from jupyter_fed.runner import dask_backend

            assert self.path is not None and self.info.backend is not None
            yield from dask_backend.map_arrow_partitions(
                self.path, FORMATS[self.path.suffix.lower()], columns, self._dtypes(), text,
                self.info.backend, fn)
            return
        if self._loaded is not None or self.path is None:
            yield from streaming.map_table(self._table.select(columns), fn, batch_rows)
            return
        yield from streaming.map_file(self.path, FORMATS[self.path.suffix.lower()], columns,
                                         self._dtypes(), text, fn, batch_rows)

    def aligned(self, prl_session_id: str) -> LoadedDataset:
        """The rows record-linkage session ``prl_session_id`` linked, in aligned order (see
        ``DatasetHandle.aligned``); ``ConfigError`` naming the dataset when there is none for
        this principal or the dataset changed since."""
        from jupyter_fed.runner.aligned import open_aligned

        return open_aligned(self, prl_session_id)

    def _columns_as_is(self, columns: Sequence[str]) -> list[str]:
        columns = list(columns)
        known = {c.name for c in self.info.columns}
        missing = [c for c in columns if c not in known]
        if missing:
            raise DatasetError(f"dataset {self.info.name!r} has no column(s) {', '.join(missing)}",
                               f"its columns are {', '.join(sorted(known))}")
        return columns

    def _known(self, columns: Sequence[str]) -> list[str]:
        columns = self._columns_as_is(columns)
        # Converting an identifier or text column to numbers fails with the offending cell in the
        # message (``could not convert string to float: 'SSN-…'``): refuse by name, before reading.
        ids = [c.name for c in self.info.columns if c.name in columns and c.role == "id"]
        if ids:
            raise DatasetError(f"dataset {self.info.name!r}: column(s) {', '.join(ids)} are "
                               "identifiers, not numbers", "leave id columns out of the "
                               "predictors, target and statistics")
        return columns

    def _dtypes(self) -> dict[str, str]:
        return {c.name: c.dtype for c in self.info.columns}
