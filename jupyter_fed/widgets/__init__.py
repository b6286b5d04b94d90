"""ipywidgets panels: pick datasets, configure and start a session, watch it train, explore EDA.

Each panel is one module and one ``VBox``; their state is plain traits (``selected``,
``columns``, ``status``...), so code and tests can drive them without a browser.
"""

from __future__ import annotations

from jupyter_fed.widgets._eda import EdaPanel
from jupyter_fed.widgets._form import SessionForm
from jupyter_fed.widgets._live import LiveMetrics
from jupyter_fed.widgets._picker import DatasetPicker
from jupyter_fed.widgets._provider import ProviderForm

__all__ = ["DatasetPicker", "EdaPanel", "LiveMetrics", "ProviderForm", "SessionForm"]
