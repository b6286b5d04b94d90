"""The Jupyter server extension: REST handlers over the coordinator, configured with traitlets.

Importing this package imports jupyter_server; ``import jupyter_fed`` does not (the extension
entry point in ``jupyter_fed/__init__.py`` imports it lazily).
"""

from __future__ import annotations

from jupyter_fed.server.app import JupyterFedApp
from jupyter_fed.server.routes import API_PREFIX, ROUTES

__all__ = ["API_PREFIX", "ROUTES", "JupyterFedApp"]
