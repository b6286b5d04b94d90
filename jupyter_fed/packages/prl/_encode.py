"""From a dataset's id columns to what one party sends: sorted, de-duplicated keyed tokens.

Runs at the runner. Each block of rows is normalised and hashed where the rows are read (in this
process, or on the Dask workers for a Dask-backed dataset); only tokens and row numbers come
back. The party then keeps, for every distinct id, its first row (duplicates are counted, never
linked twice) and sorts by token — so what leaves the runner is a set of opaque tokens in an
order that says nothing about the rows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from jupyter_fed.packages.prl._crypto import TOKEN_BYTES, hmac_tokens
from jupyter_fed.packages.prl._normalise import combine, missing, normalise

if TYPE_CHECKING:
    import pyarrow as pa

    from jupyter_fed.packages.base import DatasetHandle, StepContext

__all__ = ["Encoded", "Encoding", "encode_dataset", "first_of_each"]


@dataclass(frozen=True)
class Encoding:
    """How one party turns rows into tokens (a plain value: it travels to Dask workers).

    Attributes
    ----------
    key
        The HMAC key of exact tokens (block tokens with fuzzy linkage).
    columns
        Exact id columns, then fuzzy columns; ``steps`` and the number of exact ones say which.
    bloom
        ``(key, bits, hashes, ngram)`` of fuzzy linkage's Bloom filters, else ``None``.
    """

    key: bytes
    columns: tuple[str, ...]
    steps: tuple[tuple[str, ...], ...]
    exact: int
    missing_values: tuple[str, ...] = ()
    bloom: tuple[bytes, int, int, int] | None = None


@dataclass
class Encoded:
    """One dataset's linkage input, in the order it is sent."""

    tokens: np.ndarray
    """(m, 16) uint8: sorted distinct tokens (with fuzzy linkage: block tokens, sorted)."""
    rows: np.ndarray
    """int64: the dataset row of each token."""
    n_records: int
    n_missing: int
    n_duplicates: int
    bloom: np.ndarray | None = None
    """With fuzzy linkage: (m, bits/8) uint8 Bloom filters of the fuzzy columns."""
    extra: dict[str, Any] = field(default_factory=dict)


def _values(table: pa.Table, enc: Encoding) -> tuple[list[pa.Array], np.ndarray]:
    """Normalised columns and the rows where any of them is missing."""
    cols, absent = [], np.zeros(table.num_rows, dtype=bool)
    for name, steps in zip(enc.columns, enc.steps, strict=True):
        values = normalise(table.column(name), steps)
        if enc.missing_values:
            import pyarrow as pa

            gone = normalise(pa.array(list(enc.missing_values)), steps).to_pylist()
        else:
            gone = []
        absent |= missing(values, [g for g in gone if g]).to_numpy(zero_copy_only=False)
        cols.append(values)
    return cols, absent


def _messages(parts: list[pa.Array], keep: np.ndarray) -> list[bytes]:
    import pyarrow as pa
    import pyarrow.compute as pc

    text = combine(parts).filter(pa.array(keep))
    return pc.cast(text, pa.large_binary()).to_pylist()


def encode_block(table: pa.Table, first_row: int, enc: Encoding) -> dict[str, Any]:
    """Tokens (and Bloom filters) of one block's rows that have every id (module level: Dask
    workers run it)."""
    parts, absent = _values(table, enc)
    keep = ~absent
    rows = np.flatnonzero(keep).astype(np.int64) + int(first_row)
    out: dict[str, Any] = {"rows": rows, "missing": int(absent.sum())}
    exact = parts[:enc.exact]
    out["tokens"] = hmac_tokens(enc.key, _messages(exact, keep)) if exact else \
        np.tile(hmac_tokens(enc.key, [b""]), (len(rows), 1))
    if enc.bloom is not None:
        import pyarrow as pa

        from jupyter_fed.packages.prl._bloom import bloom_filters

        out["full"] = hmac_tokens(enc.key, _messages(parts, keep))
        fuzzy = [p.filter(pa.array(keep)).to_pylist() for p in parts[enc.exact:]]
        key, bits, hashes, ngram = enc.bloom
        out["bloom"] = bloom_filters(list(zip(*fuzzy, strict=True)), key, bits, hashes, ngram)
    return out


def _halves(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    words = np.ascontiguousarray(tokens).view(">u8").reshape(len(tokens), 2)
    return words[:, 0], words[:, 1]


def first_of_each(tokens: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Indices that keep each distinct token once — at its first row — sorted by token."""
    hi, lo = _halves(tokens)
    order = np.lexsort((rows, lo, hi))
    if len(order) == 0:
        return order
    new = np.ones(len(order), dtype=bool)
    new[1:] = (hi[order][1:] != hi[order][:-1]) | (lo[order][1:] != lo[order][:-1])
    return order[new]


def _concat(blocks: list[dict[str, Any]], key: str, width: int = 0) -> np.ndarray:
    """One array of every block's ``key`` (``width``: bytes per row of uint8 rows; 0: int64)."""
    if blocks:
        return np.concatenate([b[key] for b in blocks])
    return np.zeros((0, width), np.uint8) if width else np.zeros(0, np.int64)


def encode_dataset(ctx: StepContext, handle: DatasetHandle, enc: Encoding, what: str,
                   share: tuple[float, float] = (0.0, 1.0)) -> Encoded:
    """Read the id columns block by block and encode them; progress within ``share``."""
    blocks = []
    total = max(handle.num_rows, 1)
    done = 0
    for block in handle.map_arrow(list(enc.columns), functools.partial(encode_block, enc=enc)):
        blocks.append(block)
        done += len(block["rows"]) + block["missing"]
        ctx.progress(share[0] + (share[1] - share[0]) * min(done / total, 1.0), what)
    tokens, rows = _concat(blocks, "tokens", TOKEN_BYTES), _concat(blocks, "rows")
    n_missing = sum(b["missing"] for b in blocks)
    if enc.bloom is None:
        keep = first_of_each(tokens, rows)
        return Encoded(tokens[keep], rows[keep], handle.num_rows, n_missing, len(rows) - len(keep))
    full = _concat(blocks, "full", TOKEN_BYTES)
    bloom = _concat(blocks, "bloom", enc.bloom[1] // 8)
    keep = first_of_each(full, rows)
    bhi, blo = _halves(tokens[keep])
    fhi, flo = _halves(full[keep])
    keep = keep[np.lexsort((flo, fhi, blo, bhi))]
    return Encoded(tokens[keep], rows[keep], handle.num_rows, n_missing, len(rows) - len(keep),
                   bloom[keep])
