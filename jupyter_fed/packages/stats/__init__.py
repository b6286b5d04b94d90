"""Mergeable sufficient statistics, peer exploration and PSR contracts (after SymetryML).

Each runner shares the count, means and cross-products of its selected rows — also conditioned on
each binary column — after withholding whatever describes fewer than ``min_count`` rows; the
coordinator checks each contribution against the session's contract and merges the rest exactly.
"""

from __future__ import annotations

from jupyter_fed.packages.registry import Notebook, PackageSpec, register

PACKAGE = register(PackageSpec(
    name="stats",
    aliases=("statistics", "psr", "iai_stats"),
    steps={"compute": "jupyter_fed.packages.stats.local:compute"},
    plan="jupyter_fed.packages.stats.plan:StatsPlan",
    model="jupyter_fed.packages.stats.model:StatsResults",
    description="exact mergeable statistics (count, means, cross-products, conditioned on binary "
                "columns), peer exploration, OLS and PSR contracts",
    roles=("data",),
    notebook=Notebook(data_keys=("columns", "filter", "condition_on", "batch_rows"), rounds=False,
                      predictors=False,
                      model_keys="jupyter_fed.packages.stats.config:StatsModelConfig",
                      show="jupyter_fed.packages.stats.notebook:show",
                      example="columns: []\ncontract: COUNT(x0) > 100"),
))
