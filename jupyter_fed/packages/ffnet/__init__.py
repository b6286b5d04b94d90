"""Feed-forward network trained by horizontal federated learning (reference name ``iai_ffnet``)."""

from __future__ import annotations

from jupyter_fed.packages.registry import Notebook, PackageSpec, register

PACKAGE = register(PackageSpec(
    name="ffnet",
    aliases=("iai_ffnet", "ffn", "iai_ffn"),
    steps={"fit": "jupyter_fed.packages.ffnet.local:fit",
           "evaluate": "jupyter_fed.packages.ffnet.local:evaluate",
           "moments": "jupyter_fed.packages.ffnet.local:moments"},
    plan="jupyter_fed.packages.ffnet.plan:FFNetPlan",
    model="jupyter_fed.packages.ffnet.model:FFNetModel",
    privacy_cost="jupyter_fed.packages.ffnet._dp:privacy_cost",
    description="feed-forward neural network (classification or regression), FedAvg family",
    notebook=Notebook(input_size="model.params.input_size",
                      model_keys="jupyter_fed.packages.ffnet.config:FFNetConfig",
                      example="target: y\nmodel: {params: {hidden_layer_sizes: [16, 8], "
                              "output_size: 2}}\noptimizer: {name: SGD, params: {learning_rate: "
                              "0.1, momentum: 0.9}}"),
))
