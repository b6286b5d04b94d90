"""Feed-forward network trained by horizontal federated learning (reference name ``iai_ffnet``)."""

from __future__ import annotations

from jupyter_fed.packages.registry import PackageSpec, register

PACKAGE = register(PackageSpec(
    name="ffnet",
    aliases=("iai_ffnet", "ffn", "iai_ffn"),
    steps={"fit": "jupyter_fed.packages.ffnet.local:fit",
           "evaluate": "jupyter_fed.packages.ffnet.local:evaluate"},
    plan="jupyter_fed.packages.ffnet.plan:FFNetPlan",
    model="jupyter_fed.packages.ffnet.model:FFNetModel",
    privacy_cost="jupyter_fed.packages.ffnet._dp:privacy_cost",
    resource_estimate="jupyter_fed.packages.ffnet._cost:estimate",
    description="feed-forward neural network (classification or regression), FedAvg family",
))
