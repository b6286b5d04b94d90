"""Exploratory data analysis on the intersection a record linkage found (EDA intersect mode).

Each party's columns are described on its linked rows only, with individual mode's DP; pairs of
``paired_columns`` get 2D histograms, group sums and cross-products (correlation, ``groupby``,
arithmetic between columns), computed across parties under BFV homomorphic encryption so that no
party and not the coordinator sees another party's per-row values. The SDK reaches it as
``create_eda_session(..., eda_mode="intersect")``, the notebook as ``%%federate eda --mode
intersect``.
"""

from __future__ import annotations

from jupyter_fed.packages.registry import Notebook, PackageSpec, register

_LOCAL = "jupyter_fed.packages.eda_intersect.local"

PACKAGE = register(PackageSpec(
    name="eda_intersect",
    aliases=("iai_eda_intersect",),
    steps={step: f"{_LOCAL}:{step}" for step in ("describe", "local_pairs", "encrypt", "evaluate",
                                                 "decrypt")},
    plan="jupyter_fed.packages.eda_intersect.plan:IntersectPlan",
    model="jupyter_fed.packages.eda_intersect.model:IntersectResults",
    privacy_cost="jupyter_fed.packages.eda_intersect.config:privacy_cost",
    description="EDA on a record linkage's intersection: DP histograms per party, and 2D "
                "histograms, correlations and group means across parties under homomorphic "
                "encryption",
    roles=("data",),
    notebook=Notebook(data_keys=("clients", "prl_session_id", "paired_columns"), rounds=False,
                      predictors=False, per_client=True,
                      model_keys="jupyter_fed.packages.eda_intersect.config:IntersectConfig",
                      show="jupyter_fed.packages.eda_intersect.notebook:show",
                      example="prl_session_id: <id of a completed prl session>\n"
                              "epsilon: 1.0\npair_epsilon: 1.0\n"
                              "paired_columns: {hospital-a: [x0], hospital-b: [x8]}\n"
                              "clients:\n"
                              "  hospital-a: {data: hospital-a/patients, columns: []}\n"
                              "  hospital-b: {data: hospital-b/patients, columns: []}"),
))
