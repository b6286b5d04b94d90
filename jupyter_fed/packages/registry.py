"""Package names → where their halves live.

Entries are import strings, so looking a package up imports nothing: the runner imports only the
``local`` half, the coordinator only the ``plan`` half, the kernel only the ``model`` half.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jupyter_fed.errors import ConfigError


@dataclass(frozen=True)
class Notebook:
    """How ``%%federate <package>`` reads a cell and shows the outcome: no per-package code in
    ``magics/``, the package declares it here.

    Parameters
    ----------
    data_keys
        Keys of a flat cell body that belong to ``data_config`` (every other key goes to
        ``model_config``), e.g. ``("predictors", "target")``.
    rounds
        Whether the session has rounds: ``--rounds``, ``--test-datasets`` and ``--strategy`` apply,
        and a live metrics panel follows it. One-shot packages say ``False``.
    per_dataset
        ``data_config`` is keyed by dataset name (EDA's ``{dataset: [columns]}``); the cell's
        flat ``data_keys`` then apply to every dataset named by ``--datasets``.
    per_client
        ``data_config`` is keyed by client name (``clients: {name: {...}}``, record linkage and
        vertical packages): each entry may name its datasets by role (``train: runner/name``,
        ``test: …``), which become that client's task (joined with that ``client_name``) instead
        of ``--datasets``.
    input_size
        Dotted ``model_config`` path filled with the number of predictors when missing.
    predictors
        Fill ``predictors`` with the training datasets' common columns except the target.
    model_keys
        ``"module:Class"`` of the pydantic ``model_config`` model, whose fields are the body keys
        a cell may use (unknown keys are refused naming the allowed ones); ``""`` accepts any.
    show
        ``"module:function"`` called as ``function(session, var)`` to show a finished session's
        results in a notebook; ``""`` prints the final metrics.
    example
        A short cell body that works on typical data: shown by ``%federate?`` and inserted by the
        JupyterLab sidebar.
    task_options
        Keys of a ``per_client`` entry that are the client's task options
        (``ClientInfo.options``: a vertical session's ``batch_size``, ``storage_path``), not
        configuration.
    """

    data_keys: tuple[str, ...] = ("predictors", "target")
    rounds: bool = True
    per_dataset: bool = False
    per_client: bool = False
    input_size: str | None = None
    predictors: bool = True
    model_keys: str = ""
    show: str = ""
    example: str = ""
    task_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class PackageSpec:
    """Where one package's parts live.

    Parameters
    ----------
    name
        Canonical name, e.g. ``"ffnet"``.
    aliases
        Other accepted names, e.g. the reference SDK's ``"iai_ffnet"``.
    steps
        Step name → ``"module:function"`` of the runner-side implementation.
    plan
        ``"module:Class"`` of the coordinator-side plan.
    model
        ``"module:Class"`` of the kernel-side artefact.
    privacy_cost
        Where the package declares the differential-privacy epsilon each step spends.
    roles
        Dataset roles of a client; the first is required.
    notebook
        How ``%%federate`` reads a cell for this package and shows its results.
    """

    name: str
    aliases: tuple[str, ...] = ()
    steps: dict[str, str] = field(default_factory=dict)
    plan: str = ""
    model: str = ""
    description: str = ""
    roles: tuple[str, ...] = ("train", "test")
    """Dataset roles a client may bring (``tb.hfl(train, test)``, ``tb.eda(data)``); the first is
    the one every client must have. ``join`` checks tasks against them."""
    notebook: Notebook = field(default_factory=Notebook)
    privacy_cost: str = ""
    """``"module:function"``: (step, params, facts) -> {dataset role: PrivacyCost}, where
    ``facts`` maps each role to its public :class:`~jupyter_fed.privacy.accounting.DatasetFacts`
    (row count, delta cap). Runs at the runner, which debits the budget before reading data;
    the step must then keep to what was debited (``ctx.policy[role]["grant"]``)."""

    resource_estimate: str = ""
    """``"module:function"``: (step, params, rows: {dataset role: number of rows}) -> bytes a step
    would add to its worker's memory at its peak. Runs at the runner on untrusted params before
    anything is built, so a 1 KB request for a model of gigabytes is refused up front; the
    runner's memory limit still stops a step whose estimate was too low."""

    def privacy_cost_of(self, step: str, params: dict[str, Any],
                        facts: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Each role's :class:`~jupyter_fed.privacy.accounting.PrivacyCost` of ``step``."""
        if not self.privacy_cost:
            return {}
        from jupyter_fed.privacy.accounting import PrivacyCost

        found = _load(self.privacy_cost)(step, params, dict(facts or {}))
        return {role: PrivacyCost.of(cost) for role, cost in found.items()}

    def resource_estimate_of(self, step: str, params: dict[str, Any], rows: dict[str, int]) -> int:
        """Estimated peak memory of ``step`` in bytes; 0 when the package gives no estimate."""
        return int(_load(self.resource_estimate)(step, params, rows)) if self.resource_estimate \
            else 0

    def load_step(self, step: str) -> Any:
        if step not in self.steps:
            raise ConfigError(f"package {self.name!r} has no step {step!r}",
                              f"known steps: {', '.join(sorted(self.steps))}")
        return _load(self.steps[step])

    def load_plan(self) -> Any:
        return _load(self.plan)

    def load_model(self) -> Any:
        return _load(self.model)


def load_object(target: str) -> Any:
    """The object a ``"module:attribute"`` string names (imported only now)."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


_load = load_object


_PACKAGES: dict[str, PackageSpec] = {}


def register(spec: PackageSpec) -> PackageSpec:
    for key in (spec.name, *spec.aliases):
        _PACKAGES[key.lower()] = spec
    return spec


BUILTIN = ("jupyter_fed.packages.ffnet", "jupyter_fed.packages.eda", "jupyter_fed.packages.stats",
           "jupyter_fed.packages.glm", "jupyter_fed.packages.linear_inference", "jupyter_fed.packages.pca",
           "jupyter_fed.packages.prl", "jupyter_fed.packages.gbm",
           "jupyter_fed.packages.splitnn", "jupyter_fed.packages.eda_intersect",
           "jupyter_fed.packages.vfl_glm", "jupyter_fed.packages.vfl_gbm")
_loaded = False
_load_lock = threading.RLock()  # RLock: a package module's import calls register() re-entrantly


def _ensure_builtin() -> None:
    """Import the built-in packages, installed plug-ins and ``JUPYTER_FED_PACKAGES`` modules.

    Plug-ins declare an entry point in the ``jupyter_fed.packages`` group naming a module whose
    import calls :func:`register`; the environment variable (comma-separated module names) serves
    runners started for tests or experiments.
    """
    global _loaded
    if _loaded:
        return
    with _load_lock:  # two threads asking at once must both see every package
        if _loaded:
            return
        import os
        from importlib.metadata import entry_points

        modules = list(BUILTIN) + [ep.value for ep in entry_points(group="jupyter_fed.packages")]
        modules += [m.strip() for m in os.environ.get("JUPYTER_FED_PACKAGES", "").split(",")
                    if m.strip()]
        for module in modules:
            importlib.import_module(module.partition(":")[0])
        _loaded = True


def get_package(name: str) -> PackageSpec:
    """Look a package up by name or alias (case-insensitive); unknown names raise ``ConfigError``."""
    _ensure_builtin()
    spec = _PACKAGES.get(str(name).lower())
    if spec is None:
        raise ConfigError(f"unknown package {name!r}",
                          f"available packages: {', '.join(package_names())}",
                          details=[{"field": "package_name", "error": "unknown package"}])
    return spec


def package_names() -> list[str]:
    _ensure_builtin()
    return sorted({spec.name for spec in _PACKAGES.values()})


def describe_packages() -> list[dict[str, Any]]:
    """Every package as the notebook and the sidebar need to know it (JSON, no imports of it)."""
    _ensure_builtin()
    out = []
    for spec in sorted({id(s): s for s in _PACKAGES.values()}.values(), key=lambda s: s.name):
        nb = spec.notebook
        out.append({"name": spec.name, "aliases": list(spec.aliases),
                    "description": spec.description, "roles": list(spec.roles),
                    "rounds": nb.rounds, "data_keys": list(nb.data_keys),
                    "per_dataset": nb.per_dataset, "per_client": nb.per_client,
                    "example": nb.example})
    return out
