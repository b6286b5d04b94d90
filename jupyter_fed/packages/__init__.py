"""Algorithms, one folder each: config (both sides), local (runner), plan (coordinator), model (kernel)."""

from __future__ import annotations

from jupyter_fed.packages.registry import PackageSpec, get_package, package_names, register

__all__ = ["PackageSpec", "get_package", "package_names", "register"]
