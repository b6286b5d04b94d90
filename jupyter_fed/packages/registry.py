"""Package names → where their halves live.

Entries are import strings, so looking a package up imports nothing: the runner imports only the
``local`` half, the coordinator only the ``plan`` half, the kernel only the ``model`` half.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any

from jupyter_fed.errors import ConfigError


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
    """

    name: str
    aliases: tuple[str, ...] = ()
    steps: dict[str, str] = field(default_factory=dict)
    plan: str = ""
    model: str = ""
    description: str = ""
    privacy_cost: str = ""
    """``"module:function"``: (step, params) -> {dataset role: epsilon}. Runs at the runner, which
    debits the budget before reading data; the step itself must then keep to that epsilon."""

    resource_estimate: str = ""
    """``"module:function"``: (step, params, rows: {dataset role: number of rows}) -> bytes a step
    would add to its worker's memory at its peak. Runs at the runner on untrusted params before
    anything is built, so a 1 KB request for a model of gigabytes is refused up front; the
    runner's memory limit still stops a step whose estimate was too low."""

    def privacy_cost_of(self, step: str, params: dict[str, Any]) -> dict[str, float]:
        return dict(_load(self.privacy_cost)(step, params)) if self.privacy_cost else {}

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


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


_PACKAGES: dict[str, PackageSpec] = {}


def register(spec: PackageSpec) -> PackageSpec:
    for key in (spec.name, *spec.aliases):
        _PACKAGES[key.lower()] = spec
    return spec


BUILTIN = ("jupyter_fed.packages.ffnet", "jupyter_fed.packages.eda", "jupyter_fed.packages.stats")
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
