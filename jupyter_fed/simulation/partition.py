"""Splitting one dataset into the silos of a simulated federation.

Three schemes, each deterministic for a seed, each returning the row positions of every client:

- ``iid``: a random permutation cut into ``num_clients`` near-equal parts;
- ``dirichlet:<alpha>``: label skew after Hsu et al. (2019), "Measuring the Effects of
  Non-Identical Data Distribution for Federated Visual Classification": for every class, the share
  each client gets is drawn from ``Dirichlet(alpha, …, alpha)``; small ``alpha`` gives each client
  few classes, large ``alpha`` tends to IID (as Flower's ``DirichletPartitioner``);
- ``column:<name>``: one client per distinct value of a column (a site, a hospital, a region),
  in sorted order of the values — the split a real federation has.

A simulated client below the runner's minimum rows would be refused by a real runner; the
Dirichlet scheme therefore redraws (up to ``max_tries`` times) until every client has at least
``min_rows`` rows, as Flower's ``min_partition_size`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from jupyter_fed.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Partitioning", "partition"]


@dataclass(frozen=True)
class Partitioning:
    """A parsed partition scheme: ``iid``, ``dirichlet:<alpha>`` or ``column:<name>``.

    Parameters
    ----------
    kind
        ``"iid"``, ``"dirichlet"`` or ``"column"``.
    alpha
        The Dirichlet concentration (``kind == "dirichlet"``), > 0.
    column
        The column whose values name the clients (``kind == "column"``).
    """

    kind: str
    alpha: float | None = None
    column: str | None = None

    @classmethod
    def parse(cls, text: str | Partitioning) -> Partitioning:
        """``"iid"``, ``"dirichlet:0.5"`` (``"dirichlet"`` alone means α = 0.5) or
        ``"column:site"``; ``ConfigError`` naming the accepted forms otherwise."""
        if isinstance(text, Partitioning):
            return text
        kind, _, arg = str(text).strip().partition(":")
        kind = kind.lower()
        if kind == "iid" and not arg:
            return cls("iid")
        if kind == "dirichlet":
            try:
                alpha = float(arg) if arg else 0.5
            except ValueError:
                alpha = -1.0
            if not np.isfinite(alpha) or alpha <= 0:
                raise ConfigError(f"partition {text!r}: alpha must be a positive number",
                                  "e.g. dirichlet:0.5 (smaller is more skewed)")
            return cls("dirichlet", alpha=alpha)
        if kind == "column" and arg:
            return cls("column", column=arg)
        raise ConfigError(f"unknown partition {text!r}",
                          "use iid, dirichlet:ALPHA (e.g. dirichlet:0.5) or column:NAME")

    def __str__(self) -> str:
        if self.kind == "dirichlet":
            return f"dirichlet:{self.alpha:g}"
        if self.kind == "column":
            return f"column:{self.column}"
        return "iid"


def partition(data: pd.DataFrame | Sequence[Any] | np.ndarray, num_clients: int | None = None,
              scheme: str | Partitioning = "iid", *, label: str | None = None, seed: int = 0,
              min_rows: int = 1, max_tries: int = 100) -> list[np.ndarray]:
    """Row positions of each simulated client's partition.

    Parameters
    ----------
    data
        The whole dataset as a DataFrame; or, for ``iid`` and ``dirichlet``, the labels alone
        (one per row), for ``column`` the column's values alone.
    num_clients
        How many clients. Required for ``iid`` and ``dirichlet``; for ``column`` it defaults to
        the number of distinct values and must equal it when given.
    scheme
        ``"iid"`` (default), ``"dirichlet:<alpha>"`` or ``"column:<name>"`` (see the module).
    label
        The class column of a DataFrame, for ``dirichlet``.
    seed
        The same seed, data and scheme give the same partitions, in any process.
    min_rows
        Fewest rows a client may get: ``iid`` refuses a split that leaves fewer, ``dirichlet``
        redraws, ``column`` refuses a value held by fewer rows.
    max_tries
        Draws ``dirichlet`` makes before giving up on ``min_rows``.

    Returns
    -------
    list of numpy.ndarray
        One sorted ``int64`` array of row positions per client, disjoint, covering every row.

    Raises
    ------
    ConfigError
        For an unknown scheme, a missing column, or partitions that cannot reach ``min_rows``.

    Examples
    --------
    >>> import numpy as np
    >>> parts = partition(np.array([0, 1] * 50), 4, "dirichlet:0.5", seed=1, min_rows=5)
    >>> sorted(np.concatenate(parts).tolist()) == list(range(100))
    True
    """
    how = Partitioning.parse(scheme)
    if how.kind == "column":
        return _by_column(_column(data, how.column), num_clients, min_rows, how.column or "")
    if num_clients is None or num_clients < 1:
        raise ConfigError(f"num_clients must be a positive integer (got {num_clients!r})",
                          "pass num_clients=N")
    rng = np.random.default_rng(seed)
    if how.kind == "iid":
        n = _length(data)
        if n < num_clients * min_rows:
            raise ConfigError(f"{n} rows cannot give {num_clients} clients {min_rows} rows each",
                              "use fewer clients or more rows")
        return [np.sort(p) for p in np.array_split(rng.permutation(n), num_clients)]
    labels = _column(data, label) if label is not None or not _is_frame(data) else None
    if labels is None:
        raise ConfigError("a dirichlet partition needs the label column",
                          "pass label=COLUMN (the target), or the labels themselves")
    assert how.alpha is not None
    return _dirichlet(np.asarray(labels), num_clients, how.alpha, rng, min_rows, max_tries)


def _dirichlet(labels: np.ndarray, num_clients: int, alpha: float, rng: np.random.Generator,
               min_rows: int, max_tries: int) -> list[np.ndarray]:
    classes = np.unique(labels)
    by_class = [np.flatnonzero(labels == c) for c in classes]
    smallest = 0
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for rows in by_class:
            rows = rng.permutation(rows)
            shares = rng.dirichlet(np.full(num_clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(rows)).astype(np.int64)
            for i, piece in enumerate(np.split(rows, cuts)):
                parts[i].append(piece)
        out = [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
        smallest = min(len(p) for p in out)
        if smallest >= min_rows:
            return out
    raise ConfigError(f"no dirichlet:{alpha:g} split of {len(labels)} rows into {num_clients} "
                      f"clients gave every client {min_rows} rows in {max_tries} draws (the "
                      f"smallest had {smallest})",
                      "raise alpha, use fewer clients, or more rows")


def _by_column(values: np.ndarray, num_clients: int | None, min_rows: int,
               column: str) -> list[np.ndarray]:
    groups = np.unique(values)
    if num_clients is not None and num_clients != len(groups):
        raise ConfigError(f"column {column!r} has {len(groups)} distinct values, so "
                          f"{len(groups)} clients, not {num_clients}",
                          "leave num_clients out, or partition another way")
    out = [np.flatnonzero(values == g).astype(np.int64) for g in groups]
    small = [str(g) for g, p in zip(groups, out, strict=True) if len(p) < min_rows]
    if small:
        raise ConfigError(f"column {column!r}: {len(small)} value(s) hold fewer than {min_rows} "
                          "rows, too few for a client", "partition another way")
    return out


def _is_frame(data: Any) -> bool:
    return hasattr(data, "columns") and hasattr(data, "iloc")


def _length(data: Any) -> int:
    return len(data.index) if _is_frame(data) else len(data)


def _column(data: Any, name: str | None) -> np.ndarray:
    if not _is_frame(data):
        return np.asarray(data)
    if name is None or name not in data.columns:
        raise ConfigError(f"the dataset has no column {name!r}",
                          f"its columns are {', '.join(map(str, data.columns))}")
    return data[name].to_numpy()
