"""Mergeable sufficient statistics, peer exploration and PSR contracts (after SymetryML).

Each runner shares the exact count, means and cross-products of a whole registered dataset (or
view) — also conditioned on each binary column the session's runners agree is binary — after
withholding whatever describes fewer rows than the release minimum; a row filter makes the answer
differentially private instead. The coordinator checks each contribution against the session's
peer contract, merges the rest exactly and checks the merged contract.
"""

from __future__ import annotations

from jupyter_fed.packages.registry import Notebook, PackageSpec, register

PACKAGE = register(PackageSpec(
    name="stats",
    aliases=("statistics", "psr", "iai_stats"),
    steps={"compute": "jupyter_fed.packages.stats.local:compute",
           "kinds": "jupyter_fed.packages.stats.local:kinds"},
    plan="jupyter_fed.packages.stats.plan:StatsPlan",
    model="jupyter_fed.packages.stats.model:StatsResults",
    privacy_cost="jupyter_fed.packages.stats.config:privacy_cost",
    description="exact mergeable statistics (count, means, cross-products, conditioned on binary "
                "columns), peer exploration, OLS and PSR contracts",
    roles=("data",),
    notebook=Notebook(data_keys=("columns", "filter", "condition_on", "batch_rows"), rounds=False,
                      predictors=False,
                      model_keys="jupyter_fed.packages.stats.config:StatsModelConfig",
                      show="jupyter_fed.packages.stats.notebook:show",
                      example="columns: []\ncontract: COUNT(x0) > 100"),
))
