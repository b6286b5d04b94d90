"""``%%federate eda`` / ``%%federate stats``: one analytics session from one cell, results shown.

An analytics session is one step per dataset and one merge; nothing trains. The cell's body holds
the package's options (flat), the line names the datasets, and when the session completes the cell
shows what came back: for EDA the describe table and the pooled histograms, for stats the merged
describe table, the correlation matrix and each peer's notes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jupyter_fed.magics._body import names, parse_body, split_ref
from jupyter_fed.magics._display import in_kernel, show, show_figure
from jupyter_fed.magics._errors import CellConfigError, fed_errors
from jupyter_fed.magics._spec import join_or_cancel

if TYPE_CHECKING:
    from jupyter_fed.client import Client, Session

__all__ = ["ANALYTICS", "AnalyticsSpec", "show_results"]

ANALYTICS = ("eda", "stats")
"""Packages ``%%federate`` runs as analytics sessions (aliases such as ``iai_eda`` resolve)."""

SESSION_KEYS = ("name", "description", "datasets")
DATA_KEYS = {"eda": ("columns",), "stats": ("columns", "filter", "condition_on", "batch_rows")}


def model_keys(package: str) -> list[str]:
    """The keys a flat body may give for the package's ``model_config``."""
    if package == "eda":
        from jupyter_fed.packages.eda.config import EdaConfig

        return list(EdaConfig.model_fields)
    from jupyter_fed.packages.stats.config import StatsModelConfig

    return [*StatsModelConfig.model_fields, "fed_psr_contract_snd_fail_action",
            "fed_psr_contract_rcv_fail_action"]


@dataclass
class AnalyticsSpec:
    """An EDA or stats session to create and join, one client per dataset.

    Parameters
    ----------
    package
        ``"eda"`` or ``"stats"``.
    datasets
        ``"name"`` or ``"runner/name"``, one client each.
    model_config, data_config
        The package's configuration, as the SDK's ``create_analytics_session`` takes it.
    name, description
        Shown in listings; the name defaults to the package and datasets.
    """

    package: str
    datasets: list[str] = field(default_factory=list)
    model_config: dict[str, Any] = field(default_factory=dict)
    data_config: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    description: str = ""

    @classmethod
    def from_cell(cls, package: str, body: str, *, datasets: str | None = None,
                  name: str | None = None) -> AnalyticsSpec:
        """Build a spec from a flat body; ``datasets`` and ``name`` from the line win.

        The body's keys are the package's ``model_config`` fields (``epsilon``, ``mechanism``,
        ``bins``…; ``contract``, ``send_action``, ``receive_action``), its data keys (``columns``;
        for stats also ``filter``, ``condition_on``, ``batch_rows``), an optional ``data_config:``
        section (EDA: ``{dataset: [columns]}``; stats: per-dataset queries), and ``name``,
        ``description``, ``datasets``.
        """
        data = parse_body(body)
        session = {k: data.pop(k) for k in SESSION_KEYS if k in data}
        section = data.pop("data_config", None)
        if section is not None and not isinstance(section, dict):
            raise CellConfigError(f"data_config must be a mapping, got {type(section).__name__}",
                                  "write 'data_config:' followed by 'dataset: [columns]' lines")
        model = data.pop("model_config", None) or {}
        if not isinstance(model, dict):
            raise CellConfigError(f"model_config must be a mapping, got {type(model).__name__}",
                                  "or write its keys at the top level of the body")
        flat = {k: data.pop(k) for k in DATA_KEYS[package] if k in data}
        allowed = model_keys(package)
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            keys = [*allowed, *DATA_KEYS[package], "data_config", *SESSION_KEYS]
            raise CellConfigError(f"unknown key {unknown[0]!r} for %%federate {package}",
                                  f"the body's keys may be: {', '.join(keys)}")
        refs = names(datasets if datasets is not None else session.get("datasets"), "datasets")
        if not refs and section:  # the datasets a data_config section names
            per = section.get("datasets") if package == "stats" else None
            refs = list(per) if isinstance(per, dict) else [
                k for k in section if package == "eda" or k not in (*DATA_KEYS["stats"], "datasets")]
        spec = cls(package, refs, {**model, **data}, {}, name or session.get("name"),
                   str(session.get("description", "")))
        spec.data_config = spec._data_config(flat, section or {})
        return spec

    def _data_config(self, flat: dict[str, Any], section: dict[str, Any]) -> dict[str, Any]:
        if self.package == "stats":
            return {**section, **flat}  # top-level keys are the defaults of every dataset
        if "columns" in flat and section:
            raise CellConfigError("give either columns: (for every dataset) or data_config: "
                                  "(per dataset), not both", "keep one of them")
        columns = flat.get("columns", [])
        if not isinstance(columns, list):
            raise CellConfigError("columns must be a list of column names or 1-based indices",
                                  "write e.g. columns: [x0, x1, y]")
        return {split_ref(ref)[1]: section.get(split_ref(ref)[1], columns) for ref in self.datasets}

    def check(self) -> None:
        if not self.datasets:
            raise CellConfigError("no datasets given", "add --datasets a,b (names from "
                                                       "%fed datasets)")

    def launch(self, client: Client, on_created: Callable[[Session], None] | None = None) -> Session:
        """Create the session and join one client per dataset; cancelled if joining is refused."""
        from jupyter_fed.client.taskgroup import TaskBuilder

        self.check()
        with fed_errors("the session was refused", CellConfigError), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # its notice is printed below instead
            session = client.create_analytics_session(
                self.package, self.name or f"{self.package} on {', '.join(self.datasets)}",
                self.description, data_config=self.data_config, model_config=self.model_config,
                num_datasets=len(self.datasets))
        if session.notice:
            print(session.notice)
        if on_created is not None:
            on_created(session)
        join_or_cancel(session, [TaskBuilder().eda(name, runner=runner)
                                 for runner, name in map(split_ref, self.datasets)])
        return session


def show_results(session: Session, var: str) -> None:
    """Show a completed analytics session's results: tables, and EDA's pooled histograms."""
    with fed_errors(f"reading the results of session {session.id}"):
        results = session.results()
    if session.package == "eda":
        table = results.describe()
        summary = results.summary()
        if summary:
            print(summary)
        show(f"EDA results (noisy: differentially private histograms)\n{table.to_string()}",
             results._repr_html_())
        if in_kernel():
            show_figure(results.plot_hist())
        else:
            print(f"the pooled histograms: {var}.results().plot_hist()")
        return
    show(_stats_text(results), _stats_html(results))


def _stats_text(results: Any) -> str:
    lines = [repr(results)]
    if results.columns:
        lines += [results.describe().to_string(float_format=lambda v: f"{v:.4g}"), "correlation:",
                  results.correlation_matrix().round(3).to_string()]
    lines += [f"{cid}: {why}" for cid, why in results.rejected.items()]
    return "\n".join(lines)


def _stats_html(results: Any) -> str:
    parts = [results._repr_html_()]
    if len(results.columns) > 1:
        corr = results.correlation_matrix().iloc[:20, :20]
        parts.append("<div><b>Correlation</b></div>" + corr.to_html(
            float_format=lambda v: f"{v:.3f}", classes="jp-Fed-stats", na_rep=""))
    return "".join(parts)
