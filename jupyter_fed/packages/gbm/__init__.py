"""Federated histogram gradient boosting (reference name ``iai_gbm``, strategy
``HistGradientBoosting``): scikit-learn's algorithm on bin edges from merged DDSketches, trees
grown level by level from the runners' summed gradient histograms."""

from __future__ import annotations

from jupyter_fed.packages.registry import Notebook, PackageSpec, register

PACKAGE = register(PackageSpec(
    name="gbm",
    aliases=("iai_gbm", "hfl_gbm"),
    steps={"sketch": "jupyter_fed.packages.gbm.local:sketch",
           "grow": "jupyter_fed.packages.gbm.local:grow",
           "evaluate": "jupyter_fed.packages.gbm.local:evaluate"},
    plan="jupyter_fed.packages.gbm.plan:GBMPlan",
    model="jupyter_fed.packages.gbm.model:GBMModel",
    privacy_cost="jupyter_fed.packages.gbm.local:privacy_cost",
    resource_estimate="jupyter_fed.packages.gbm.local:estimate",
    description="histogram gradient-boosted trees (classification or regression), "
                "scikit-learn's HistGradientBoosting across silos",
    notebook=Notebook(model_keys="jupyter_fed.packages.gbm.config:GBMConfig",
                      example="target: y\nml_task: {type: classification}\n"
                              "model: {params: {max_depth: 4, learning_rate: 0.1, max_iter: 20}}"),
))
