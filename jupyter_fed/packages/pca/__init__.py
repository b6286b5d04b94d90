"""Exact federated principal component analysis (reference name ``iai_pca``, strategy ``FedPCA``).

Every silo shares the count, mean and centred cross-products of its rows; the merged covariance
gives the pooled rows' axes exactly, in one round (``num_rounds`` is ignored).
"""

from __future__ import annotations

from jupyter_fed.packages.registry import Notebook, PackageSpec, register

PACKAGE = register(PackageSpec(
    name="pca",
    aliases=("iai_pca", "fedpca"),
    steps={"moments": "jupyter_fed.packages.pca.local:moments",
           "evaluate": "jupyter_fed.packages.pca.local:evaluate"},
    privacy_cost="jupyter_fed.packages.pca.local:privacy_cost",
    plan="jupyter_fed.packages.pca.plan:PCAPlan",
    model="jupyter_fed.packages.pca.model:PCAModel",
    description="exact principal component analysis from merged moments (one round), with "
                "reconstruction metrics",
    notebook=Notebook(data_keys=("predictors",), predictors=False,
                      model_keys="jupyter_fed.packages.pca.config:PCAConfig",
                      example="predictors: [x0, x1, x2, x3, x4, x5, x6, x7, x8, x9]\n"
                              "model: {params: {n_components: 3, whiten: false}}"),
))
