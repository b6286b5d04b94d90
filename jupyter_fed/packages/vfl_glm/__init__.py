"""Generalised linear model over vertically partitioned data (reference strategy ``VflGlm``).

Parties hold different columns of the same people, linked by a ``prl`` session; one of them, the
label party, holds the target. Each party keeps its own coefficients. Every round the label
party fits its own block and the directions the passive parties offer, and sends each passive
party its gradient ``X_pᵀ s`` computed under that party's BFV key from its encrypted features, so
residuals and labels never leave the label party in the clear. The reference SDK's
``create_vfl_session(..., package_name="iai_glm")`` is routed here. See ``plan`` for the rounds
and the README for what each party and the coordinator learn. Every evaluated round also values
each party (its Shapley value for the validation deviance, ``_valuation``), and with
``feature_importance_score`` each party computes its columns' exact linear SHAP values at the end
(``local.importance``). Metrics, influence scores and SHAP summaries leave only for the round's
one exact evaluation the runner grants (``_cost``); beyond it the label party reports nothing.
"""

from __future__ import annotations

from jupyter_fed.packages.registry import Notebook, PackageSpec, register

_LOCAL = "jupyter_fed.packages.vfl_glm.local"

PACKAGE = register(PackageSpec(
    name="vfl_glm",
    aliases=("vflglm", "iai_vfl_glm", "vfl-glm"),
    steps={"start": f"{_LOCAL}:start", "label": f"{_LOCAL}:label",
           "passive": f"{_LOCAL}:passive", "predict": f"{_LOCAL}:predict",
           "importance": f"{_LOCAL}:importance"},
    plan="jupyter_fed.packages.vfl_glm.plan:VflGlmPlan",
    model="jupyter_fed.packages.vfl_glm.model:VflGlmModel",
    privacy_cost="jupyter_fed.packages.vfl_glm._cost:privacy_cost",
    roles=("train", "test"),
    description="generalised linear model over vertically partitioned data (after a prl "
                "linkage): coefficients at every party, BFV-encrypted gradients",
    notebook=Notebook(data_keys=("clients",), rounds=False, predictors=False, per_client=True,
                      model_keys="jupyter_fed.packages.vfl_glm.config:VflGlmConfig",
                      task_options=("batch_size", "storage_path", "raw_output"),
                      show="jupyter_fed.packages.vfl_glm.model:show",
                      example="prl_session_id: <id of a prl session>\n"
                              "rounds: 30\n"
                              "ml_task: {type: logistic}\n"
                              "clients:\n"
                              "  hospital-a: {train: hospital-a/patients, test: patients-test, "
                              "predictors: [x0, x1, x2]}\n"
                              "  hospital-b: {train: hospital-b/patients, test: patients-test, "
                              "predictors: [x8, x9], label_client: true, target: y}\n"
                              "model:\n"
                              "  hospital-a: {params: {input_size: 3}}\n"
                              "  hospital-b: {params: {input_size: 2}}"),
))
