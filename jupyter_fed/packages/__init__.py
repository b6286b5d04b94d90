"""Algorithms, one folder each: config (both sides), local (runner), plan (coordinator), model (kernel)."""

from __future__ import annotations

from jupyter_fed.packages.registry import (
    Notebook,
    PackageSpec,
    get_package,
    package_names,
    register,
)

__all__ = ["Notebook", "PackageSpec", "get_package", "package_names", "register"]
