"""Mergeable sufficient statistics, peer exploration and PSR contracts (after SymetryML).

Each runner shares the count, means and cross-products of its selected rows — also conditioned on
each binary column — after withholding whatever describes fewer than ``min_count`` rows; the
coordinator checks each contribution against the session's contract and merges the rest exactly.
"""

from __future__ import annotations

from jupyter_fed.packages.registry import PackageSpec, register

PACKAGE = register(PackageSpec(
    name="stats",
    aliases=("statistics", "psr", "iai_stats"),
    steps={"compute": "jupyter_fed.packages.stats.local:compute"},
    plan="jupyter_fed.packages.stats.plan:StatsPlan",
    model="jupyter_fed.packages.stats.model:StatsResults",
    privacy_cost="jupyter_fed.packages.stats.config:privacy_cost",
    description="exact mergeable statistics (count, means, cross-products, conditioned on binary "
                "columns), peer exploration, OLS and PSR contracts",
))
