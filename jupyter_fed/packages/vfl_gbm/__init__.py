"""Gradient-boosted trees over vertically partitioned data, SecureBoost-style (``VflGbm``).

Parties hold different columns of the same people, linked by a ``prl`` session. Each party bins
its own columns (its edges never leave it); the label party computes gradients and hessians and
sends them Paillier-encrypted, through the coordinator, to the passive parties, which return
encrypted per-bin sums for their own columns in each node. The label party decrypts, finds the
best split (gbm's gain) and tells only the owning party which of its bins splits; the owner keeps
the threshold and says which rows go right. The reference SDK's
``create_vfl_session(..., package_name="iai_gbm")`` is routed here.
"""

from __future__ import annotations

from jupyter_fed.packages.registry import PackageSpec, register

_LOCAL = "jupyter_fed.packages.vfl_gbm.local"

PACKAGE = register(PackageSpec(
    name="vfl_gbm",
    aliases=("vflgbm", "secureboost", "vfl_secureboost"),
    steps={s: f"{_LOCAL}:{s}" for s in ("start", "grad", "hist", "split", "route", "finish",
                                         "bits", "predict")},
    plan="jupyter_fed.packages.vfl_gbm.plan:VflGbmPlan",
    model="jupyter_fed.packages.vfl_gbm.model:VflGbmModel",
    roles=("train", "test"),
    description="gradient-boosted trees over vertically partitioned data (after a prl "
                "linkage), SecureBoost-style: Paillier-encrypted gradients, split values kept "
                "by the party whose column they split",
))
