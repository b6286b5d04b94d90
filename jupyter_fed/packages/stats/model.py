"""Kernel half of stats: the merged statistics, and each peer's, to explore in a notebook.

``session.results()`` returns a :class:`StatsResults`. Every SymetryML exploration function is a
method (``mean``, ``lincorr``, ``cond_mean``, ``pct_of_true``, …) on the merged statistics, and
the same methods exist per peer (``results.peer("silo0/train_silo0").mean("x0")``): peer
exploration compares silos without seeing a row of either. A session run with ``smpc: true``
merged the peers' statistics by secure aggregation: only the merged statistics exist, and
``peer()`` says so.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from jupyter_fed.packages.stats._explore import StatsView
from jupyter_fed.packages.stats._moments import Moments, Stats

__all__ = ["PeerStats", "StatsResults"]


class PeerStats(StatsView):
    """One peer's statistics, as its runner shared them.

    Attributes
    ----------
    client_id, dataset
        Who contributed them (``runner/dataset``) and from which dataset.
    warnings
        What the runner withheld or noted (suppressed groups, cached answer, contract).
    cached
        Whether the runner answered from its cache of an identical earlier query.
    """

    def __init__(self, stats: Stats, info: dict[str, Any]) -> None:
        super().__init__(stats)
        self.client_id: str = info["client_id"]
        self.dataset: str = info.get("dataset", "")
        self.warnings: list[str] = list(info.get("warnings", []))
        self.cached: bool = bool(info.get("cached"))
        self.filter: str | None = info.get("filter")

    def __repr__(self) -> str:
        return f"<PeerStats {self.client_id}: {self.n} rows, {len(self.columns)} columns>"


class StatsResults(StatsView):
    """Merged statistics of a stats session, with per-peer exploration.

    Parameters
    ----------
    arrays, meta
        What the coordinator stored: ``merged/*`` and ``peer{i}/*`` arrays; ``meta["results"]``
        describes them and ``meta["rejected"]`` maps left-out clients to the reason.
    """

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        results = meta.get("results") or {}
        merged = results.get("merged")
        stats = Stats.from_tensors(arrays, merged, "merged/") if merged else \
            Stats([], Moments.empty(0), np.zeros(0))
        super().__init__(stats)
        self.meta = meta
        self.rejected: dict[str, str] = dict(meta.get("rejected") or {})
        self.contract: str | None = results.get("contract")
        self.smpc: bool = bool(results.get("smpc"))
        """Merged by secure aggregation: no peer's statistics were ever seen."""
        self.contributors: list[str] = [c["client_id"] for c in results.get("contributors", [])]
        self._peers = {p["client_id"]: PeerStats(Stats.from_tensors(arrays, p, p["prefix"]), p)
                       for p in results.get("peers", [])}

    @property
    def peers(self) -> list[str]:
        """Client ids (``runner/dataset``) whose statistics are merged here."""
        return list(self._peers)

    @property
    def warnings(self) -> dict[str, list[str]]:
        """Per peer: what its runner withheld or noted."""
        return {cid: p.warnings for cid, p in self._peers.items() if p.warnings}

    def peer(self, name: str) -> PeerStats:
        """One peer's statistics, by client id (``"silo0/train_silo0"``), runner or dataset name.

        Raises
        ------
        KeyError
            No such peer, an ambiguous name, or a peer whose contribution was left out (the
            message gives the reason).
        """
        if self.smpc:
            raise KeyError(f"no peer statistics in an smpc session: the peers' statistics were "
                           f"merged by secure aggregation, so the coordinator only ever saw their "
                           f"sum (contributors: {', '.join(self.contributors) or 'none'}); "
                           "explore the merged statistics, or run without smpc")
        if name in self._peers:
            return self._peers[name]
        matches = [cid for cid, p in self._peers.items()
                   if name in (p.dataset, cid.split("/", 1)[0])]
        if len(matches) == 1:
            return self._peers[matches[0]]
        left_out = {cid: why for cid, why in self.rejected.items()
                    if name in (cid, *cid.split("/", 1))}
        if left_out:
            cid, why = next(iter(left_out.items()))
            raise KeyError(f"the contribution of {cid} was left out: {why}")
        what = "is ambiguous" if matches else "is not a peer"
        raise KeyError(f"{name!r} {what}; peers: {', '.join(self._peers) or 'none'}")

    def __repr__(self) -> str:
        if self.smpc:
            return (f"<StatsResults {self.n} rows from {len(self.contributors)} peer(s) merged "
                    f"securely (smpc), {len(self.columns)} columns, {len(self.rejected)} left out>")
        return (f"<StatsResults {self.n} rows from {len(self._peers)} peer(s), "
                f"{len(self.columns)} columns, {len(self.rejected)} left out>")

    def _repr_html_(self) -> str:
        esc = html.escape
        head = (f"<b>Statistics</b>: {self.n} rows from "
                f"{len(self.contributors if self.smpc else self._peers)} peer(s), "
                f"{len(self.columns)} columns" + (", merged securely (smpc)" if self.smpc else ""))
        if self.contract:
            head += ", checked against a contract"
        parts = [f"<div>{head}</div>"]
        table = self.describe().head(20)
        parts.append(table.to_html(float_format=lambda v: f"{v:.4g}", classes="jp-Fed-stats"))
        if len(self.columns) > 20:
            parts.append(f"<div>… and {len(self.columns) - 20} more columns</div>")
        peers = "".join(f"<li><code>{esc(cid)}</code>: {p.n} rows"
                        f"{' (cached)' if p.cached else ''}"
                        + "".join(f"<br><small>⚠ {esc(w)}</small>" for w in p.warnings) + "</li>"
                        for cid, p in self._peers.items())
        parts.append(f"<div>Peers<ul>{peers}</ul></div>")
        if self.rejected:
            items = "".join(f"<li><code>{esc(cid)}</code>: {esc(why)}</li>"
                            for cid, why in self.rejected.items())
            parts.append(f"<div>Left out<ul>{items}</ul></div>")
        return "".join(parts)
