"""``%%federate eda`` / ``%%federate stats``: one analytics session from one cell, results shown.

An analytics session is one step per dataset and one merge; nothing trains. The cell's body holds
the package's options (flat), the line names the datasets, and when the session completes the cell
shows what came back: for EDA the describe table and the pooled histograms, for stats the merged
describe table, the correlation matrix and each peer's notes. Packages configured per client
(``Notebook.per_client``: record linkage) take their datasets from the body's ``clients:``
section instead of the line, one task per client under its name.
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
    from jupyter_fed.packages import Notebook

__all__ = ["AnalyticsSpec", "model_keys", "show_results"]

SESSION_KEYS = ("name", "description", "datasets", "rounds")


def _notebook(package: str) -> Notebook:
    from jupyter_fed.packages import get_package

    return get_package(package).notebook


def model_keys(package: str) -> list[str]:
    """The keys a flat body may give for the package's ``model_config`` (with their aliases);
    empty when the package declares no config model (any key passes to the coordinator)."""
    from pydantic import AliasChoices

    from jupyter_fed.packages.registry import load_object

    target = _notebook(package).model_keys
    if not target:
        return []
    keys: list[str] = []
    for name, info in load_object(target).model_fields.items():
        keys.append(name)
        if isinstance(info.validation_alias, AliasChoices):
            keys += [a for a in info.validation_alias.choices if isinstance(a, str) and a != name]
    return keys


@dataclass
class AnalyticsSpec:
    """An EDA or stats session to create and join, one client per dataset.

    Parameters
    ----------
    package
        A one-shot package (``Notebook.rounds`` false), e.g. ``"eda"`` or ``"stats"``.
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
    tasks: list[dict[str, Any]] = field(default_factory=list)
    """Per-client packages (``Notebook.per_client``): one task per client of ``data_config``."""
    rounds: int = 1
    """``rounds:`` in the body, for per-client packages that take them (a vertical session's
    epochs)."""

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
        nb = _notebook(package)
        flat = {k: data.pop(k) for k in nb.data_keys if k in data}
        allowed = model_keys(package)
        unknown = sorted(set(data) - set(allowed)) if allowed or nb.per_client else []
        if unknown:
            keys = [*allowed, *nb.data_keys, "data_config", *SESSION_KEYS]
            raise CellConfigError(f"unknown key {unknown[0]!r} for %%federate {package}",
                                  f"the body's keys may be: {', '.join(keys)}")
        refs = names(datasets if datasets is not None else session.get("datasets"), "datasets")
        if not refs and section:  # the datasets a data_config section names
            per = section.get("datasets")
            refs = list(per) if isinstance(per, dict) else [
                k for k in section if nb.per_dataset or k not in (*nb.data_keys, "datasets")]
        spec = cls(package, refs, {**model, **data}, {}, name or session.get("name"),
                   str(session.get("description", "")))
        rounds = session.get("rounds", 1)
        if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
            raise CellConfigError(f"rounds must be a positive integer, got {rounds!r}",
                                  "write e.g. rounds: 5")
        spec.rounds = rounds
        spec.data_config = spec._data_config(flat, section or {}, nb)
        if nb.per_client:
            if refs:
                raise CellConfigError(f"%%federate {package} names each client's datasets in the "
                                      "body, not with --datasets",
                                      "write clients: {name: {train: runner/dataset, ...}}")
            spec._client_tasks()
        return spec

    def _client_tasks(self) -> None:
        """Move each client's datasets (``train: runner/name``, …) from ``data_config.clients``
        into one task per client, joined under the client's name."""
        from jupyter_fed.client.taskgroup import TaskBuilder
        from jupyter_fed.packages import get_package

        roles = get_package(self.package).roles
        clients = self.data_config.get("clients")
        if not isinstance(clients, dict) or not clients:
            raise CellConfigError(f"%%federate {self.package} needs a clients: section",
                                  "write clients: {name: {train: runner/dataset, ...}, ...}")
        for cid, entry in clients.items():
            if not isinstance(entry, dict) or not isinstance(entry.get(roles[0]), str):
                raise CellConfigError(f"clients.{cid} names no {roles[0]} dataset",
                                      f"write {cid}: {{{roles[0]}: runner/dataset, ...}}")
            refs = {role: entry.pop(role) for role in roles if isinstance(entry.get(role), str)}
            options = {k: entry.pop(k) for k in get_package(self.package).notebook.task_options
                       if k in entry}
            runner = split_ref(refs[roles[0]])[0]
            task = TaskBuilder().hfl(split_ref(refs[roles[0]])[1], runner=runner,
                                     client_name=str(cid))
            task["datasets"] = {role: split_ref(ref)[1] for role, ref in refs.items()}
            if options:
                task["options"] = options
            self.tasks.append(task)
            self.datasets += [ref if split_ref(ref)[0] or runner is None else f"{runner}/{ref}"
                              for ref in refs.values()]

    def _data_config(self, flat: dict[str, Any], section: dict[str, Any], nb: Notebook
                     ) -> dict[str, Any]:
        if not nb.per_dataset:
            return {**section, **flat}  # top-level keys are the defaults of every dataset
        key = nb.data_keys[0]
        if key in flat and section:
            raise CellConfigError(f"give either {key}: (for every dataset) or data_config: "
                                  "(per dataset), not both", "keep one of them")
        columns = flat.get(key, [])
        if not isinstance(columns, list):
            raise CellConfigError(f"{key} must be a list of column names or 1-based indices",
                                  f"write e.g. {key}: [x0, x1, y]")
        return {split_ref(ref)[1]: section.get(split_ref(ref)[1], columns) for ref in self.datasets}

    def check(self) -> None:
        if not self.datasets and not self.tasks:
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
                num_datasets=len(self.tasks) or len(self.datasets), num_rounds=self.rounds)
        if session.notice:  # e.g. the epsilon each EDA column gets, before anything runs
            print(session.notice)
        if on_created is not None:
            on_created(session)
        join_or_cancel(session, self.tasks or [TaskBuilder().eda(name, runner=runner)
                                               for runner, name in map(split_ref, self.datasets)])
        return session


def show_results(session: Session, var: str) -> None:
    """Show a completed one-shot session's results the way its package declares
    (``Notebook.show``), else the results object itself."""
    from jupyter_fed.packages.registry import load_object

    with fed_errors(f"reading the results of session {session.id}"):
        results = session.results()
        target = _notebook(session.package).show
        items = load_object(target)(results) if target else [results]
    for item in items:
        if hasattr(item, "savefig"):  # a matplotlib figure
            if in_kernel():
                show_figure(item)
            else:
                print(f"(a figure: {var}.results() has it)")
        elif isinstance(item, str):
            print(item)
        else:
            html = getattr(item, "_repr_html_", None)
            show(repr(item), html() if html else None)
