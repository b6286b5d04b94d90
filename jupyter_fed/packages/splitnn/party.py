"""A vertical party's state file between steps, for other vertical packages (vfl_glm): the
public face of :mod:`._party`."""

from __future__ import annotations

from jupyter_fed.packages.splitnn._party import PartyFile

__all__ = ["PartyFile"]
