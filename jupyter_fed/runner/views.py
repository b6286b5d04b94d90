"""Views: a registered dataset that is a filtered part of a file (``--view "age >= 18"``).

Exact statistics are released only over a whole registered dataset. A custodian who wants exact
statistics on a subset registers it as a view — a row filter in the registration, applied by
pyarrow when the rows are read — and owns that choice. Every view of a file (and the file under
any other name) shares one privacy budget and one differencing store, keyed by the resolved
file (:func:`~jupyter_fed.runner.policy.budget_group`); row sets are remembered in the file's
row numbering, so two overlapping views that differ by a few rows are caught like two queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from jupyter_fed.contracts import BoolOp, Comparison, Expr, parse_filter
from jupyter_fed.errors import ConfigError
from jupyter_fed.runner.data import LoadedDataset, TableCache
from jupyter_fed.runner.storage import DataPath

if TYPE_CHECKING:
    import pyarrow as pa

    from jupyter_fed.runner.aligned import AlignmentScope
    from jupyter_fed.wire import DatasetInfo

__all__ = ["ViewDataset", "open_dataset", "view_rows"]

T = TypeVar("T")


def _expression(expr: Expr) -> Any:
    import pyarrow.compute as pc

    if isinstance(expr, BoolOp):
        parts = [_expression(t) for t in expr.terms]
        out = parts[0]
        for p in parts[1:]:
            out = (out & p) if expr.op == "AND" else (out | p)
        return out
    assert isinstance(expr, Comparison)
    field, value = pc.field(str(expr.left)), expr.value
    return {"<": field < value, "<=": field <= value, ">": field > value, ">=": field >= value,
            "==": field == value, "!=": field != value}[expr.op]


def view_rows(text: str, columns: Sequence[str]) -> Callable[[pa.Table], pa.Table]:
    """The row selection of a view, checked against the file's columns (named in any error)."""
    from jupyter_fed.contracts import ContractSyntaxError, filter_columns

    try:
        expr = parse_filter(text)
    except ContractSyntaxError as exc:
        raise ConfigError(f"view: {exc.message}", exc.hint) from None
    unknown = [c for c in filter_columns(expr) if c not in columns]
    if unknown:
        raise ConfigError(f"view: the file has no column(s) {', '.join(unknown)}",
                          "write the view over the file's own columns")
    compiled = _expression(expr)
    return lambda table: table.filter(compiled)


class ViewDataset(LoadedDataset):
    """A ``DatasetHandle`` over the rows of a file that a view's filter keeps."""

    whole_file = False

    def __init__(self, info: DatasetInfo, path: DataPath, loader: Callable[[DataPath], pa.Table],
                 alignments: AlignmentScope | None = None) -> None:
        assert info.view is not None
        select = view_rows(info.view, [c.name for c in info.columns])
        self._full_loader = loader
        super().__init__(info, None, path, lambda p: select(self._with_row_numbers(loader(p))),
                         alignments)

    @staticmethod
    def _with_row_numbers(table: pa.Table) -> pa.Table:
        import pyarrow as pa

        return table.append_column("__file_row__", pa.array(np.arange(table.num_rows)))

    def to_pandas(self, columns: Sequence[str] | None = None) -> Any:
        return super().to_pandas(list(columns) if columns else [c.name for c in self.info.columns])

    @property
    def partitioned(self) -> bool:
        return False  # views are refused on Dask-backed files at registration

    def iter_batches(self, columns: Sequence[str], batch_rows: int = 65_536) -> Iterator[np.ndarray]:
        """The view's rows, in file order, sliced from the filtered table (never the whole file:
        the parent class streams the file only while no table is loaded)."""
        _ = self._table
        yield from super().iter_batches(columns, batch_rows)

    def map_arrow(self, columns: Sequence[str], fn: Callable[[pa.Table, int], T],
                  batch_rows: int = 65_536) -> Iterator[T]:
        """The view's rows as tables, sliced from the filtered table like :meth:`iter_batches`."""
        _ = self._table
        yield from super().map_arrow(columns, fn, batch_rows)

    def file_rows(self) -> np.ndarray:
        """Row numbers, in the file, of the view's rows (for the differencing store)."""
        return self._table.column("__file_row__").to_numpy()

    @property
    def file_num_rows(self) -> int:
        return int(self._full_loader(self.path).num_rows) if self.path is not None else 0


def open_dataset(info: DatasetInfo, path: DataPath, cache: TableCache) -> LoadedDataset:
    """The handle a step reads a registered dataset through: the file, or a view of it."""
    if info.view:
        return ViewDataset(info, path, cache.get)
    return LoadedDataset(info, cache.peek(path), path, cache.get)
