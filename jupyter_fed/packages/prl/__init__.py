"""Private record linkage (reference name ``prl``): which rows of each party are the same people.

The first half of vertical federation. A session links two or more parties' datasets on their id
columns without any id leaving its runner — by keyed hashes under a secret the parties agree on
by X25519 (``protocol: keyed_hash``, the default; the coordinator intersects opaque tokens), or by
two-party ECDH private set intersection (``protocol: psi``; the coordinator sees only blinded
messages). Each runner ends with its own aligned row index per dataset (train and test), which
later vertical sessions read through ``DatasetHandle.aligned(prl_session_id)``; the coordinator
keeps only sizes and an opaque digest. ``num_rounds`` is ignored.
"""

from __future__ import annotations

from jupyter_fed.packages.registry import Notebook, PackageSpec, register

_LOCAL = "jupyter_fed.packages.prl.local"
_PSI = "jupyter_fed.packages.prl._psi"

PACKAGE = register(PackageSpec(
    name="prl",
    aliases=("iai_prl", "private_record_linkage"),
    steps={"keys": f"{_LOCAL}:keys", "share": f"{_LOCAL}:share", "tokens": f"{_LOCAL}:tokens",
           "align": f"{_LOCAL}:align", "commit": f"{_LOCAL}:commit", "psi_keys": f"{_PSI}:keys",
           "psi_prepare": f"{_PSI}:prepare", "psi_serve": f"{_PSI}:serve",
           "psi_intersect": f"{_PSI}:intersect", "psi_align": f"{_PSI}:psi_align"},
    privacy_cost=f"{_LOCAL}:privacy_cost",
    plan="jupyter_fed.packages.prl.plan:PRLPlan",
    model="jupyter_fed.packages.prl.model:PRLResult",
    roles=("train", "test"),
    description="private record linkage: align parties' rows on their id columns by keyed hashes "
                "or private set intersection, for vertical sessions",
    notebook=Notebook(data_keys=("clients", "protocol", "fuzzy", "psi_threads"), rounds=False,
                      predictors=False, per_client=True,
                      show="jupyter_fed.packages.prl.notebook:show",
                      example="protocol: keyed_hash\n"
                              "clients:\n"
                              "  hospital-a: {train: hospital-a/patients, id_columns: [patient_id]}\n"
                              "  hospital-b: {train: hospital-b/patients, id_columns: [patient_id],"
                              " normalise: {patient_id: [trim, casefold]}}"),
))
