"""Reading a file block by block, so a step's memory is bounded by one block, not the file.

Two shapes: float64 blocks (rows × columns) for statistics and training
(``LoadedDataset.iter_batches``), and pyarrow tables of columns as they are — identifiers
included — for record linkage (``LoadedDataset.map_arrow``). Rows always come in file order.
Errors name the file and the column, never a cell value. A file on object storage is read the
same way, through an fsspec file object (``storage.source``): pyarrow asks it for the byte ranges
of one row group or one csv block at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from jupyter_fed.errors import DatasetError
from jupyter_fed.runner.storage import DataPath, open_binary, source
from jupyter_fed.wire.models import NAME_RE

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["FORMATS", "PRE_BUFFER", "block", "map_file", "map_table", "rebatch", "row_group_batches",
           "stream"]

T = TypeVar("T")

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
"""File suffix → format the runner reads."""
PRE_BUFFER = False
"""pyarrow's ``pre_buffer`` for parquet files read in blocks. With it (pyarrow's default), a
``ParquetFile`` keeps the column chunks it pre-buffered until it is closed: iterating a 200 MB
file's batches grew the process by the whole file's columns, which is no streaming at all."""


def block(batch: Any, width: int) -> np.ndarray:
    """An arrow table or record batch as a C-contiguous float64 array (rows × columns)."""
    out = np.empty((batch.num_rows, width), dtype=np.float64)
    for j in range(width):
        out[:, j] = batch.column(j).to_numpy(zero_copy_only=False)
    return out


def row_group_batches(pf: Any, batch_rows: int, columns: list[str]) -> Iterator[Any]:
    """A parquet file's record batches one row group at a time, in file order: a batch that
    spans row groups makes pyarrow decode them together (batches end at row groups here;
    ``rebatch`` evens them out)."""
    for group in range(pf.metadata.num_row_groups):
        yield from pf.iter_batches(batch_size=batch_rows, row_groups=[group], columns=columns)


def stream(path: DataPath, columns: list[str], batch_rows: int, dtypes: dict[str, str]
            ) -> Iterator[np.ndarray]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    with source(path) as src:
        if FORMATS[path.suffix.lower()] == "parquet":
            pf = pq.ParquetFile(src, pre_buffer=PRE_BUFFER)
            try:
                for batch in row_group_batches(pf, batch_rows, columns):
                    yield block(batch.select(columns), len(columns))
            finally:
                pf.close()
            return
        # Types from the registered schema: the streaming reader would otherwise infer them from
        # the first block and fail on a later block (an int column whose later rows hold floats).
        types = {c: pa.bool_() if dtypes.get(c) == "bool" else pa.float64() for c in columns}
        block_size = max(1 << 20, min(batch_rows * max(len(dtypes), 1) * 24, 64 << 20))
        try:
            reader = pacsv.open_csv(src, read_options=pacsv.ReadOptions(block_size=block_size),
                                    convert_options=pacsv.ConvertOptions(include_columns=columns,
                                                                         column_types=types))
            for batch in reader:
                yield block(batch.select(columns), len(columns))
        except pa.ArrowInvalid as exc:  # its text quotes the offending cell: name the column
            raise _unreadable(path, exc) from None


def _unreadable(path: DataPath, exc: Exception) -> DatasetError:
    """A csv value that is not a number, by file and column — never the value itself."""
    import re

    found = re.search(r"column #(\d+)", str(exc))
    with open_binary(path) as fh:
        header = fh.readline().decode("utf-8", errors="replace").rstrip("\r\n").split(",")
    column = header[int(found.group(1))] if found and int(found.group(1)) < len(header) else None
    where = f"column {column!r}" if column and NAME_RE.match(column) else "a column"
    return DatasetError(f"{path.name}: {where} holds a value that is not a number (the file "
                        "changed since it was registered?)", "fix the file, or register it again")


def rebatch(blocks: Iterator[np.ndarray], batch_rows: int, width: int) -> Iterator[np.ndarray]:
    """Cut blocks of any size (row groups, csv blocks) into blocks of exactly ``batch_rows`` rows."""
    pending: list[np.ndarray] = []
    held = 0
    for block in blocks:
        pending.append(block)
        held += len(block)
        if held < batch_rows:
            continue
        joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
        cut = (held // batch_rows) * batch_rows
        for start in range(0, cut, batch_rows):
            yield joined[start:start + batch_rows]
        pending, held = ([joined[cut:]], held - cut) if cut < held else ([], 0)
    if held:
        yield np.concatenate(pending) if len(pending) > 1 else pending[0]


def map_table(table: pa.Table, fn: Callable[[pa.Table, int], T], batch_rows: int) -> Iterator[T]:
    """``fn(slice, first_row)`` over slices of ``batch_rows`` rows of an in-memory table."""
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    for start in range(0, table.num_rows, batch_rows):
        yield fn(table.slice(start, batch_rows), start)


def map_file(path: DataPath, fmt: str, columns: list[str], dtypes: dict[str, str], text: list[str],
             fn: Callable[[pa.Table, int], T], batch_rows: int) -> Iterator[T]:
    """``fn(table, first_row)`` over a file read in blocks of ``batch_rows`` rows, columns as
    stored — except that CSV columns in ``text`` (identifiers) are read as strings, so that an
    identifier such as ``00123`` is not turned into the number 123."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    first = 0
    with source(path) as src:
        if fmt == "parquet":
            pf = pq.ParquetFile(src, pre_buffer=PRE_BUFFER)
            try:
                for batch in row_group_batches(pf, batch_rows, columns):
                    table = pa.Table.from_batches([batch]).select(columns)
                    yield fn(table, first)
                    first += table.num_rows
            finally:
                pf.close()
            return
        types = {c: pa.string() if c in text else pa.bool_() if dtypes.get(c) == "bool"
                 else pa.float64() for c in columns}
        block_size = max(1 << 20, min(batch_rows * max(len(dtypes), 1) * 24, 64 << 20))
        try:
            reader = pacsv.open_csv(src, read_options=pacsv.ReadOptions(block_size=block_size),
                                    convert_options=pacsv.ConvertOptions(
                                        include_columns=columns, column_types=types,
                                        strings_can_be_null=False,
                                        quoted_strings_can_be_null=False))
            for batch in reader:
                table = pa.Table.from_batches([batch]).select(columns)
                for start in range(0, table.num_rows, batch_rows):
                    part = table.slice(start, batch_rows)
                    yield fn(part, first)
                    first += part.num_rows
        except pa.ArrowInvalid as exc:
            raise _unreadable(path, exc) from None
