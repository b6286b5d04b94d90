"""``SessionForm``: configure a session with controls, start it, and see the equivalent cell."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from IPython.core.error import UsageError
from traitlets import Any as AnyTrait
from traitlets import List, Unicode

from jupyter_fed.errors import FedError
from jupyter_fed.magics import SessionSpec, common_columns
from jupyter_fed.widgets._live import LiveMetrics
from jupyter_fed.widgets._picker import DatasetPicker

if TYPE_CHECKING:
    from jupyter_fed.client import Client, Session

__all__ = ["SessionForm"]

def _narrow() -> dict[str, Any]:
    """Style and a fresh layout per control (a shared Layout would resize them all at once)."""
    return {"style": {"description_width": "110px"}, "layout": w.Layout(width="260px")}


class SessionForm(w.VBox):
    """A form for a federated session over the datasets picked in a :class:`DatasetPicker`.

    Target and predictors are offered from the columns *every* picked dataset has, since a
    column missing at one silo would fail that silo's first step. The read-only text area shows
    the ``%%federate`` cell that does exactly what the Start button does, to copy into the notebook
    once the settings are right.

    Parameters
    ----------
    client
        The SDK client that creates the session.
    picker
        The picker to read datasets from; a new one is made (and shown above the form) if omitted.
    """

    columns = List(Unicode(), read_only=True,
                   help="Columns common to every picked dataset, in the first one's order.")
    cell = Unicode("", read_only=True, help="The %%federate cell equivalent to the form.")
    session = AnyTrait(None, allow_none=True, read_only=True,
                       help="The Session the Start button created last (None before).")
    var = Unicode("session", help="Variable name the generated cell stores the Session in (-o).")

    def __init__(self, client: Client, picker: DatasetPicker | None = None, **kwargs: Any) -> None:
        from jupyter_fed.packages import package_names
        from jupyter_fed.strategies.registry import STRATEGY_NAMES

        self.client = client
        own_picker = picker is None
        self.picker = picker if picker is not None else DatasetPicker(client)
        self.live: LiveMetrics | None = None
        self.package_box = w.Dropdown(options=package_names(), value="ffnet", description="package",
                                      **_narrow())
        self.strategy_box = w.Dropdown(options=list(STRATEGY_NAMES), value="FedAvg",
                                       description="strategy", **_narrow())
        self.rounds_box = w.BoundedIntText(value=3, min=1, max=100_000, description="rounds",
                                           **_narrow())
        self.clients_box = w.BoundedIntText(value=0, min=0, max=10_000, description="min clients",
                                            tooltip="0: one per picked dataset", **_narrow())
        self.test_box = w.Dropdown(options=[("(the training data)", "")], value="",
                                   description="evaluate on", **_narrow())
        self.name_box = w.Text(value="", placeholder="optional", description="name", **_narrow())
        self.task_box = w.Dropdown(options=["classification", "regression"], description="task",
                                   **_narrow())
        self.hidden_box = w.Text(value="16, 8", description="hidden layers", **_narrow())
        self.outputs_box = w.BoundedIntText(value=2, min=1, max=100_000, description="outputs",
                                            **_narrow())
        self.lr_box = w.BoundedFloatText(value=0.1, min=1e-6, max=100.0, step=0.01,
                                         description="learning rate", **_narrow())
        self.dp_box = w.Checkbox(value=False, description="differential privacy", indent=False)
        self.epsilon_box = w.BoundedFloatText(value=1.0, min=1e-3, max=1e3, description="epsilon",
                                              **_narrow())
        self.norm_box = w.BoundedFloatText(value=1.0, min=1e-6, max=1e6,
                                           description="max grad norm", **_narrow())
        self.target_box = w.Dropdown(options=[], value=None, description="target", **_narrow())
        self.predictors_box = w.SelectMultiple(options=[], rows=8, description="predictors",
                                               style={"description_width": "110px"},
                                               layout=w.Layout(width="320px"))
        self.start_button = w.Button(description="Start", icon="play", button_style="primary",
                                     tooltip="create and start the session, join the datasets")
        self.message = w.HTML()
        self.cell_box = w.Textarea(value="", rows=12, layout=w.Layout(width="95%"),
                                   description="cell", tooltip="copy this into a notebook cell")
        self.live_box = w.VBox()
        grid = w.HBox([
            w.VBox([self.package_box, self.strategy_box, self.rounds_box, self.clients_box,
                    self.test_box, self.name_box]),
            w.VBox([self.task_box, self.hidden_box, self.outputs_box, self.lr_box, self.dp_box,
                    self.epsilon_box, self.norm_box]),
            w.VBox([self.target_box, self.predictors_box])])
        children = [grid, w.HBox([self.start_button, self.message]), self.cell_box, self.live_box]
        super().__init__(children=[self.picker, *children] if own_picker else children, **kwargs)
        self.picker.observe(self._datasets_changed, names=["selected", "visible"])
        self.target_box.observe(self._target_changed, names="value")
        self.task_box.observe(self._task_changed, names="value")
        self.cell_box.observe(self._keep_cell, names="value")  # read-only yet selectable
        for box in (self.package_box, self.strategy_box, self.rounds_box, self.clients_box,
                    self.test_box, self.name_box, self.hidden_box, self.outputs_box, self.lr_box,
                    self.dp_box, self.epsilon_box, self.norm_box, self.predictors_box):
            box.observe(lambda _: self._update_cell(), names="value")
        self.observe(lambda _: self._update_cell(), names="var")
        self.start_button.on_click(lambda _: self.start())
        self._datasets_changed(None)

    # the session the form describes ------------------------------------------------------------
    def spec(self) -> SessionSpec:
        """The session the form describes; raises ``UsageError`` naming the control to fix."""
        from jupyter_fed.magics import CellConfigError

        if not self.picker.selected:
            raise CellConfigError("no datasets picked", "pick training datasets in the list above")
        if not self.target_box.value:
            raise CellConfigError("no target chosen", "choose the target column")
        if not self.predictors_box.value:
            raise CellConfigError("no predictors chosen", "choose at least one predictor column")
        try:
            hidden = [int(s) for s in self.hidden_box.value.replace(",", " ").split()]
        except ValueError:
            raise CellConfigError(f"hidden layers {self.hidden_box.value!r} are not integers",
                                  "write sizes separated by commas, e.g. 16, 8") from None
        model: dict[str, Any] = {
            "strategy": {"name": self.strategy_box.value},
            "model": {"params": {"input_size": len(self.predictors_box.value),
                                 "hidden_layer_sizes": hidden, "output_size": self.outputs_box.value}},
            "ml_task": {"type": self.task_box.value},
            "optimizer": {"name": "SGD", "params": {"learning_rate": self.lr_box.value}}}
        if self.dp_box.value:
            model["differential_privacy_params"] = {"epsilon": self.epsilon_box.value,
                                                    "max_grad_norm": self.norm_box.value}
        names = [r["name"] for r in self.picker.catalog]
        datasets = [k.split("/", 1)[1] if names.count(k.split("/", 1)[1]) == 1 else k
                    for k in self.picker.selected]
        return SessionSpec(
            package=self.package_box.value, datasets=datasets,
            test_datasets=[self.test_box.value] if self.test_box.value else [],
            model_config=model,
            data_config={"target": self.target_box.value,
                         "predictors": list(self.predictors_box.value)},
            rounds=self.rounds_box.value, min_clients=self.clients_box.value or None,
            name=self.name_box.value.strip() or None)

    def start(self) -> Session | None:
        """Create, start and join the session, then show its live panel; ``None`` if refused."""
        try:
            spec = self.spec()
            session = spec.launch(self.client)
        except (UsageError, FedError) as exc:
            self.message.value = f'<span style="color:#b91c1c">{html.escape(str(exc))}</span>'
            return None
        self.set_trait("session", session)
        if self.live is not None:
            self.live.close()
        self.live = LiveMetrics(session)
        self.live_box.children = [self.live]
        self.message.value = f"session <code>{html.escape(session.id)}</code> started"
        return session

    # reacting to the controls -------------------------------------------------------------------
    def _datasets_changed(self, _: Any) -> None:
        cols = common_columns(self.picker.catalog, self.picker.selected)
        self.set_trait("columns", cols)
        picked = {k.split("/", 1)[1] for k in self.picker.selected}
        tests = sorted({r["name"] for r in self.picker.catalog} - picked)
        current = self.test_box.value
        self.test_box.options = [("(the training data)", ""), *((t, t) for t in tests)]
        self.test_box.value = current if current in tests else ""
        target = self.target_box.value
        self.target_box.options = cols
        self.target_box.value = target if target in cols else None
        self._target_changed(None)

    def _target_changed(self, _: Any) -> None:
        old_options, old_value = self.predictors_box.options, self.predictors_box.value
        options = [c for c in self.columns if c != self.target_box.value]
        everything = not old_value or set(old_value) == set(old_options)
        self.predictors_box.options = options
        self.predictors_box.value = tuple(options if everything else
                                          [c for c in options if c in old_value])
        self._update_cell()

    def _task_changed(self, change: Any) -> None:
        self.outputs_box.value = 1 if change["new"] == "regression" else max(2, self.outputs_box.value)

    def _update_cell(self) -> None:
        try:
            text = self.spec().to_cell(self.var)
        except UsageError as exc:
            text = f"# not ready: {exc}"
        self.set_trait("cell", text)
        self.cell_box.value = text

    def _keep_cell(self, change: Any) -> None:
        if change["new"] != self.cell:
            self.cell_box.value = self.cell
