"""Exploratory data analysis (individual mode): DP histograms per column, explored in the kernel."""

from __future__ import annotations

from jupyter_fed.packages.registry import Notebook, PackageSpec, register

PACKAGE = register(PackageSpec(
    name="eda",
    aliases=("iai_eda",),
    steps={"compute": "jupyter_fed.packages.eda.local:compute"},
    plan="jupyter_fed.packages.eda.plan:EdaPlan",
    model="jupyter_fed.packages.eda.model:EdaResults",
    privacy_cost="jupyter_fed.packages.eda.config:privacy_cost",
    description="differentially private histograms and summary statistics per column",
    roles=("data",),
    notebook=Notebook(data_keys=("columns",), rounds=False, per_dataset=True, predictors=False,
                      model_keys="jupyter_fed.packages.eda.config:EdaConfig",
                      show="jupyter_fed.packages.eda.notebook:show",
                      example="epsilon: 1.0\ncolumns: []"),
))
