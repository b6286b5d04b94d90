"""Gradient-boosted trees over vertically partitioned data, SecureBoost-style (``VflGbm``).

Parties hold different columns of the same people, linked by a ``prl`` session. Each party bins
its own columns (its edges never leave it); the label party computes gradients and hessians and
sends them Paillier-encrypted, through the coordinator, to the passive parties, which return
encrypted per-bin sums for their own columns in each node. The label party decrypts, finds the
best split (gbm's gain) and tells only the owning party which of its bins splits; the owner keeps
the threshold and says which rows go right. The reference SDK's
``create_vfl_session(..., package_name="iai_gbm")`` is routed here.

Every tree with a test dataset also values each party (its Shapley value for the validation
loss, ``_valuation``): the label party walks the trees with the parties outside a coalition
treated as missing, from the validation bits it already holds, so influence costs no exchange.
With ``feature_importance_score`` the parties explain their own columns with SHAP once training
ends (``local_importance``): a passive party sends only left/right bits of its perturbed rows at
its own splits and gets back the model's raw scores. Metrics, influence scores and SHAP
summaries are exact only for the round's one exact evaluation the runner grants (``_cost``);
beyond it the label party reports loss and accuracy with noise, as gbm does, and nothing else.
"""

from __future__ import annotations

from jupyter_fed.packages.registry import Notebook, PackageSpec, register

_LOCAL = "jupyter_fed.packages.vfl_gbm.local"

PACKAGE = register(PackageSpec(
    name="vfl_gbm",
    aliases=("vflgbm", "secureboost", "vfl_secureboost"),
    steps={**{s: f"{_LOCAL}:{s}" for s in ("start", "grad", "hist", "split", "route",
                                            "finish", "bits", "predict")},
           **{s: f"{_LOCAL}_importance:{s}" for s in ("explain_bits", "explain_model",
                                                       "explain_finish")}},
    plan="jupyter_fed.packages.vfl_gbm.plan:VflGbmPlan",
    model="jupyter_fed.packages.vfl_gbm.model:VflGbmModel",
    privacy_cost="jupyter_fed.packages.vfl_gbm._cost:privacy_cost",
    roles=("train", "test"),
    description="gradient-boosted trees over vertically partitioned data (after a prl "
                "linkage), SecureBoost-style: Paillier-encrypted gradients, split values kept "
                "by the party whose column they split",
    notebook=Notebook(data_keys=("clients",), rounds=False, predictors=False, per_client=True,
                      model_keys="jupyter_fed.packages.vfl_gbm.config:VflGbmConfig",
                      task_options=("batch_size", "storage_path", "raw_output"),
                      show="jupyter_fed.packages.vfl_gbm.model:show",
                      example="prl_session_id: <id of a prl session>\n"
                              "rounds: 10\n"
                              "clients:\n"
                              "  hospital-a: {train: hospital-a/patients, test: patients-test, "
                              "predictors: [x0, x1, x2]}\n"
                              "  hospital-b: {train: hospital-b/patients, test: patients-test, "
                              "predictors: [x8, x9], label_client: true, target: y}\n"
                              "model:\n"
                              "  params: {max_depth: 3, learning_rate: 0.1, max_bins: 32}"),
))
