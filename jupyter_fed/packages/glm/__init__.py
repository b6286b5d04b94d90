"""Generalized linear models (reference name ``iai_glm``): normal, logistic, poisson, gamma and
inverse Gaussian families with an elastic-net penalty, by exact federated IRLS (``solver:
newton``, the default) or FedAvg rounds of a one-layer network (``solver: sgd``, with optional
DP-SGD)."""

from __future__ import annotations

from jupyter_fed.packages.registry import Notebook, PackageSpec, register

PACKAGE = register(PackageSpec(
    name="glm",
    aliases=("iai_glm",),
    steps={"moments": "jupyter_fed.packages.glm.local:moments",
           "newton": "jupyter_fed.packages.glm.local:newton",
           "fit": "jupyter_fed.packages.glm.local:fit",
           "evaluate": "jupyter_fed.packages.glm.local:evaluate"},
    plan="jupyter_fed.packages.glm.plan:GLMPlan",
    model="jupyter_fed.packages.glm.model:GLMModel",
    privacy_cost="jupyter_fed.packages.glm._dp:privacy_cost",
    description="generalized linear models (normal, logistic, poisson, gamma, inverse Gaussian; "
                "elastic net): exact federated IRLS, or FedAvg SGD with optional DP-SGD",
    notebook=Notebook(input_size="model.params.input_size",
                      model_keys="jupyter_fed.packages.glm.config:GLMConfig",
                      example="target: y\nml_task: {type: logistic, params: {alpha: 0.0}}\n"
                              "solver: newton"),
))
