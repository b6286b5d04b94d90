"""Linear inference (reference name ``iai_linear_inference``): a bundle of exact regressions.

One logistic (``LogitRegInference``) or linear (``LinearRegInference``) model per chunked
predictor, each with the shared predictors, all fitted together — the GWAS shape — with
coefficients, standard errors and p-values equal to the pooled fit's.
"""

from __future__ import annotations

from jupyter_fed.packages.registry import Notebook, PackageSpec, register

PACKAGE = register(PackageSpec(
    name="linear_inference",
    aliases=("iai_linear_inference",),
    steps={"fit": "jupyter_fed.packages.linear_inference.local:fit",
           "evaluate": "jupyter_fed.packages.linear_inference.local:evaluate"},
    privacy_cost="jupyter_fed.packages.linear_inference.local:privacy_cost",
    plan="jupyter_fed.packages.linear_inference.plan:InferencePlan",
    model="jupyter_fed.packages.linear_inference.model:LinearInferenceModel",
    description="a bundle of exact logistic or linear regressions, one per chunked predictor "
                "(GWAS): coefficients, standard errors and p-values of the pooled fit",
    notebook=Notebook(data_keys=("target", "shared_predictors", "chunked_predictors"),
                      predictors=False,
                      model_keys="jupyter_fed.packages.linear_inference.config:InferenceConfig",
                      example="target: y\nshared_predictors: [x1, x2]\n"
                              "chunked_predictors: [x0, x3, x10, x11]\n"
                              "strategy: {name: LogitRegInference}"),
))
