"""Simulate before you federate: a package's real steps and plans on partitions of one dataset.

Virtual clients run the package's ``local.py`` steps on partitions of a dataset (IID, Dirichlet
label skew, or one per value of a column) in this process, on Ray actors or on Dask workers, and
the session runs through the coordinator's own engine, round policy, strategies, metrics and
events, marked as a simulation. Moving to real runners changes only where the data is.

Nothing here is imported by ``import jupyter_fed``; Ray and Dask are imported only by the engine
that uses them (``pip install 'jupyter-fed[simulation]'``).
"""

from __future__ import annotations

from jupyter_fed.simulation.engines import DaskEngine, Engine, LocalEngine, RayEngine, make_engine
from jupyter_fed.simulation.federation import budget, start_simulation
from jupyter_fed.simulation.partition import Partitioning, partition

__all__ = ["DaskEngine", "Engine", "LocalEngine", "Partitioning", "RayEngine", "budget",
           "make_engine", "partition", "start_simulation"]
