"""Split neural network for vertical federated learning (reference strategy ``SplitNN``).

Parties hold different columns of the same people, linked by a ``prl`` session. Each party trains
a bottom network on its own columns; the label party also trains the head on the concatenated
embeddings and holds the target. Embeddings go to the label party and gradients come back through
the coordinator, many batches per step; labels and networks stay where they are. The reference
SDK's ``create_vfl_session(..., package_name="iai_ffnet")`` is routed here. Every evaluation
also values each party (its Shapley value for the validation loss, ``_valuation``), and with
``feature_importance_score`` the parties explain their own columns with SHAP once training ends
(``local_importance``).
"""

from __future__ import annotations

from jupyter_fed.packages.registry import Notebook, PackageSpec, register

_LOCAL = "jupyter_fed.packages.splitnn.local"

PACKAGE = register(PackageSpec(
    name="splitnn",
    aliases=("vfl", "iai_splitnn", "split_nn", "vfl_splitnn"),
    steps={"start": f"{_LOCAL}:start", "forward": f"{_LOCAL}:forward", "head": f"{_LOCAL}:head",
           "predict": f"{_LOCAL}:predict",
           "explain_embed": f"{_LOCAL}_importance:explain_embed",
           "explain_head": f"{_LOCAL}_importance:explain_head",
           "explain_finish": f"{_LOCAL}_importance:explain_finish"},
    plan="jupyter_fed.packages.splitnn.plan:SplitNNPlan",
    model="jupyter_fed.packages.splitnn.model:SplitNNModel",
    privacy_cost="jupyter_fed.packages.splitnn._dp:privacy_cost",
    roles=("train", "test"),
    description="split neural network over vertically partitioned data (after a prl linkage): "
                "bottom networks at every party, the head at the label party",
    notebook=Notebook(data_keys=("clients",), rounds=False, predictors=False, per_client=True,
                      model_keys="jupyter_fed.packages.splitnn.config:SplitNNConfig",
                      task_options=("batch_size", "storage_path", "raw_output"),
                      show="jupyter_fed.packages.splitnn.model:show",
                      example="prl_session_id: <id of a prl session>\n"
                              "rounds: 5\n"
                              "clients:\n"
                              "  hospital-a: {train: hospital-a/patients, test: patients-test, "
                              "predictors: [x0, x1, x2], batch_size: 256}\n"
                              "  hospital-b: {train: hospital-b/patients, test: patients-test, "
                              "predictors: [x8, x9], label_client: true, target: y, "
                              "batch_size: 256}\n"
                              "model:\n"
                              "  feature_models:\n"
                              "    hospital-a: {params: {input_size: 3, output_size: 4}}\n"
                              "    hospital-b: {params: {input_size: 2, output_size: 4}}\n"
                              "  label_model: {params: {hidden_layer_sizes: [8], output_size: 2}}"),
))
