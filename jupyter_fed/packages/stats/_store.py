"""What a runner remembers between statistics queries: earlier answers (and, through
:class:`~jupyter_fed.privacy.differencing.RowSets`, the row sets behind them).

**Same question, same answer.** An identical query (same principal, dataset version, columns,
filter, conditioning, policy and epsilon) is answered from the cache, never recomputed — so the
noise of a differentially private answer cannot be averaged away by asking again.

**No differencing** lives in :mod:`jupyter_fed.privacy.differencing`, shared with every package
that releases exact aggregates.

Files live under ``<runner home>/cache/stats``.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from jupyter_fed.packages.stats._moments import Stats
from jupyter_fed.privacy.differencing import RowSets, atomic_write

__all__ = ["QueryStore"]


class QueryStore:
    """Answers of one runner, and its released row sets (``rowsets``).

    Parameters
    ----------
    root
        The runner's cache folder (``StepContext.cache_dir``); ``None`` (a step run outside a
        runner) keeps them in a temporary folder for the life of the process.
    """

    _fallback: Path | None = None

    def __init__(self, root: Path | None) -> None:
        if root is None:
            if QueryStore._fallback is None:
                QueryStore._fallback = Path(tempfile.mkdtemp(prefix="jupyter-fed-stats-"))
            root = QueryStore._fallback
        self.root = Path(root) / "stats"
        self.rowsets = RowSets(root)

    # answers --------------------------------------------------------------------------------
    @staticmethod
    def key(query: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()

    def load_answer(self, key: str) -> tuple[Stats, list[str]] | None:
        meta_path = self.root / "answers" / f"{key}.json"
        if not meta_path.exists():
            return None
        meta = json.loads(meta_path.read_text())
        with np.load(self.root / "answers" / f"{key}.npz", allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        return Stats.from_tensors(arrays, meta), list(meta.get("warnings", []))

    def save_answer(self, key: str, stats: Stats, warnings: list[str]) -> None:
        import io

        arrays, meta = stats.to_tensors()
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=False, **arrays)  # type: ignore[arg-type]  # numpy stub: kwds vs allow_pickle
        atomic_write(self.root / "answers" / f"{key}.npz", buf.getvalue())
        # the json last: an answer without its arrays is never found
        atomic_write(self.root / "answers" / f"{key}.json",
                      json.dumps({**meta, "warnings": warnings}).encode())

    # row sets -------------------------------------------------------------------------------
