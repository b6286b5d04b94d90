"""Kernel half of prl: what a finished linkage tells the model builder (counts, never rows)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PRLResult"]


class PRLResult:
    """The outcome of a record-linkage session: ``session.results()``.

    Attributes
    ----------
    protocol
        ``"keyed_hash"`` or ``"psi"``.
    client_metrics
        ``{client: {role: {n_records, n_overlapped_records, frac_overlapped}}}`` — what
        ``session.metrics().as_dict()["client_metrics"]`` holds.
    counts
        ``{client: {role: {n_records, n_missing, n_duplicates, n_sent}}}``: ids missing (never
        linked) and duplicate ids (linked once, at their first row) at each party.
    digests
        ``{role: digest}``: the alignment's fingerprint, the same at every party. Later vertical
        sessions (``prl_session_id=``) check that their parties hold this alignment.
    """

    def __init__(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        self.meta = meta
        self.session_id: str = meta.get("session_id", "")
        self.protocol: str = meta.get("protocol", "")
        self.roles: list[str] = list(meta.get("roles") or [])
        self.client_metrics: dict[str, dict[str, dict[str, Any]]] = meta.get("client_metrics") or {}
        self.counts: dict[str, Any] = meta.get("counts") or {}
        self.digests: dict[str, str] = meta.get("digests") or {}
        self.fuzzy = bool(meta.get("fuzzy"))
        sizes = np.asarray(tensors.get("n_overlapped_records", np.zeros(0)), dtype=np.int64)
        self.n_overlapped: dict[str, int] = {r: int(k) for r, k in zip(self.roles, sizes,
                                                                        strict=False)}

    def as_frame(self) -> pd.DataFrame:
        """One row per client and role: records, linked records, share linked, missing and
        duplicate ids."""
        import pandas as pd

        rows = []
        for client, per in self.client_metrics.items():
            for role, m in per.items():
                extra = ((self.counts.get(client) or {}).get(role) or {})
                rows.append({"client": client, "role": role, **m,
                             "n_missing_ids": extra.get("n_missing"),
                             "n_duplicate_ids": extra.get("n_duplicates")})
        return pd.DataFrame(rows).set_index(["client", "role"]) if rows else pd.DataFrame()

    def __repr__(self) -> str:
        linked = ", ".join(f"{k:,} {r}" for r, k in self.n_overlapped.items())
        return (f"PRLResult({self.protocol}{', fuzzy' if self.fuzzy else ''}: linked {linked} "
                f"records across {len(self.client_metrics)} parties)")

    def _repr_html_(self) -> str:
        import html

        return f"<div><b>{html.escape(repr(self))}</b></div>{self.as_frame().to_html()}"
