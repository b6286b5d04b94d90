"""The one door to OpenDP: its modules, imported on first use, with the ``contrib`` features on.

``opendp.prelude`` also imports OpenDP's scikit-learn extras (over a second); the runner needs
only the measurement, domain, metric and combinator constructors, which import in ~0.2 s.
Nothing here runs at ``import jupyter_fed``.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

_lock = threading.Lock()
_ns: SimpleNamespace | None = None


def dp() -> Any:
    """A namespace with OpenDP's ``m`` (measurements), ``d`` (domains), ``me`` (metrics),
    ``ms`` (measures), ``c`` (combinators) and ``binary_search_param``."""
    global _ns
    if _ns is not None:
        return _ns
    with _lock:
        if _ns is None:
            import opendp.combinators as c
            import opendp.domains as d
            import opendp.measurements as m
            import opendp.measures as ms
            import opendp.metrics as me
            from opendp.mod import binary_search_param, enable_features

            enable_features("contrib")
            _ns = SimpleNamespace(m=m, d=d, me=me, ms=ms, c=c, binary_search_param=binary_search_param)
    return _ns
