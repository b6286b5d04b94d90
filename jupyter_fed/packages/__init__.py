"""Algorithms, one folder each: config (both sides), local (runner), plan (coordinator), model (kernel)."""

from __future__ import annotations

from jupyter_fed.packages._config import field_errors, parse_config
from jupyter_fed.packages._io import (
    Answer,
    Arrays,
    Artefact,
    Checkpoint,
    ClientInfo,
    Payload,
    RoundMetrics,
    SecureSum,
    SessionIO,
    StepResults,
)
from jupyter_fed.packages._metrics import binary_auc
from jupyter_fed.packages._plan import Plan
from jupyter_fed.packages.registry import (
    Notebook,
    PackageSpec,
    describe_packages,
    get_package,
    package_names,
    register,
)

__all__ = ["Answer", "Arrays", "Artefact", "Checkpoint", "ClientInfo", "Notebook", "PackageSpec",
           "Payload", "Plan", "RoundMetrics", "SecureSum", "SessionIO", "StepResults", "binary_auc",
           "describe_packages", "field_errors", "get_package", "package_names", "parse_config", "register"]
