"""What a ``%%federate`` cell asks for, as data: parsed from a cell, rendered back to one, launched.

The cell magic and the ``SessionForm`` widget both build a :class:`SessionSpec`, so the cell the
form shows is, by construction, the cell that does what its Start button does.
"""

from __future__ import annotations

import copy
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jupyter_fed.magics._body import (
    as_int,
    common_columns,
    names,
    parse_body,
    short_list,
    split_ref,
)
from jupyter_fed.magics._errors import CellConfigError, fed_errors

if TYPE_CHECKING:
    from jupyter_fed.client import Client, Session

__all__ = ["DATA_KEYS", "SESSION_KEYS", "SessionSpec", "common_columns", "parse_body", "split_ref"]

DATA_KEYS = ("predictors", "target")
"""Keys of a flat cell body that belong to ``data_config`` for a package that declares none."""


def _notebook(package: str) -> Any:
    """The package's declared notebook surface (``PackageSpec.notebook``), or the defaults."""
    from jupyter_fed.errors import FedError
    from jupyter_fed.packages import Notebook, get_package

    try:
        return get_package(package).notebook
    except FedError:
        # Not installed in this kernel (the coordinator may still know it, or refuse it listing
        # the packages it has): read the cell the way most training packages want.
        return Notebook(input_size="model.params.input_size")

SESSION_KEYS = ("name", "description", "rounds", "min_clients", "datasets", "test_datasets",
                "round_timeout")
"""Keys of a cell body that describe the session itself, like the magic's options do."""


def join_or_cancel(session: Session, tasks: Iterable[dict[str, Any]]) -> None:
    """Join ``tasks`` to ``session``; if that is refused, cancel the session rather than leave it
    waiting for clients forever, and raise the refusal as a cell error."""
    from jupyter_fed.client import SessionTaskGroup

    try:
        with fed_errors("joining the datasets was refused", CellConfigError):
            group = SessionTaskGroup(session)
            for task in tasks:
                group.add_task(task)
            group.start()
    except BaseException:
        try:
            session.cancel()
        except Exception:
            pass
        raise


@dataclass
class SessionSpec:
    """A session to create, start and join: package, datasets, configs and session settings.

    Parameters
    ----------
    package
        Package name, e.g. ``"ffnet"``.
    datasets
        Training datasets, one client each: ``"name"`` or ``"runner/name"``.
    test_datasets
        Empty (evaluate on the training data), one for all clients, or one per training dataset.
    model_config, data_config
        The package's configuration, passed on as given.
    rounds
        Federated rounds.
    min_clients
        Clients that must answer; ``None`` means one per training dataset.
    name, description
        Shown in listings; the name defaults to the package and datasets.
    round_timeout
        Seconds a round may take (the coordinator's default when ``None``).
    """

    package: str
    datasets: list[str] = field(default_factory=list)
    test_datasets: list[str] = field(default_factory=list)
    model_config: dict[str, Any] = field(default_factory=dict)
    data_config: dict[str, Any] = field(default_factory=dict)
    rounds: int = 10
    min_clients: int | None = None
    name: str | None = None
    description: str = ""
    round_timeout: float | None = None

    @classmethod
    def from_cell(cls, package: str, body: str, **options: Any) -> SessionSpec:
        """Build a spec from a cell body; ``options`` (the magic's, ``None`` = not given) win.

        The body is either flat (``predictors``/``target`` go to ``data_config``, everything else to
        ``model_config``) or has ``model_config``/``data_config`` sections. Session keys
        (:data:`SESSION_KEYS`) may appear in both forms.
        """
        data = parse_body(body)
        session = {k: data.pop(k) for k in SESSION_KEYS if k in data}
        if "model_config" in data or "data_config" in data:
            extra = sorted(set(data) - {"model_config", "data_config"})
            if extra:
                raise CellConfigError(
                    f"unknown top-level key {extra[0]!r} next to model_config/data_config",
                    f"move it into model_config or data_config; top-level keys may only be: "
                    f"{', '.join(SESSION_KEYS)}")
            model, dat = data.get("model_config") or {}, data.get("data_config") or {}
            for key, value in (("model_config", model), ("data_config", dat)):
                if not isinstance(value, dict):
                    raise CellConfigError(f"{key} must be a mapping, got {type(value).__name__}",
                                          f"write '{key}:' followed by indented 'key: value' lines")
        else:
            dat = {k: data.pop(k) for k in _notebook(package).data_keys if k in data}
            model = data
        merged = {**session, **{k: v for k, v in options.items() if v is not None}}
        unknown = sorted(set(merged) - set(SESSION_KEYS))
        if unknown:
            raise TypeError(f"unknown session option(s): {', '.join(unknown)}")
        spec = cls(package=package, model_config=model, data_config=dat,
                   datasets=names(merged.get("datasets"), "datasets"),
                   test_datasets=names(merged.get("test_datasets"), "test_datasets"),
                   rounds=as_int(merged.get("rounds", 10), "rounds"),
                   min_clients=None if merged.get("min_clients") is None
                   else as_int(merged["min_clients"], "min_clients"),
                   name=merged.get("name"), description=str(merged.get("description", "")),
                   round_timeout=merged.get("round_timeout"))
        return spec

    # defaults and checks ------------------------------------------------------------------------
    def with_strategy(self, strategy: str | None) -> SessionSpec:
        """Set ``model_config.strategy.name`` (keeping any params) when ``strategy`` is given."""
        if strategy:
            current = self.model_config.get("strategy")
            params = current.get("params", {}) if isinstance(current, dict) else {}
            self.model_config["strategy"] = {"name": strategy, "params": params}
        return self

    def fill_defaults(self, catalog: Iterable[Mapping[str, Any]] | None = None) -> list[str]:
        """Fill what the package says can be inferred; returns one note per value filled.

        - ``predictors`` missing but ``target`` given (``Notebook.predictors``): the training
          datasets' common columns except the target (needs ``catalog``).
        - the ``Notebook.input_size`` path of ``model_config`` missing: the number of predictors.
        """
        nb = _notebook(self.package)
        notes: list[str] = []
        dat, model = self.data_config, self.model_config
        if nb.predictors and "predictors" not in dat and isinstance(dat.get("target"), str) \
                and catalog is not None:
            cols = [c for c in common_columns(catalog, self.datasets) if c != dat["target"]]
            if cols:
                dat["predictors"] = cols
                notes.append(f"predictors: the {len(cols)} columns common to the training datasets "
                             f"except the target ({short_list(cols)})")
        predictors = dat.get("predictors")
        if nb.input_size and isinstance(predictors, list):
            *path, last = nb.input_size.split(".")
            node: Any = model
            for key in path:
                if not isinstance(node, dict):
                    return notes
                node = node.setdefault(key, {})
            if isinstance(node, dict) and last not in node:
                node[last] = len(predictors)
        return notes

    def check(self) -> None:
        """Refuse what would fail later or hang: no datasets, unpaired tests, too many clients."""
        if not self.datasets:
            raise CellConfigError("no training datasets given",
                                  "add --datasets a,b (names from %fed datasets)")
        n, t = len(self.datasets), len(self.test_datasets)
        if t not in (0, 1, n):
            raise CellConfigError(f"--test-datasets lists {t} datasets for {n} training datasets",
                                  "give one test dataset for all, or one per training dataset")
        if self.min_clients is not None and not 1 <= self.min_clients <= n:
            raise CellConfigError(f"--min-clients is {self.min_clients} but {n} dataset(s) join",
                                  "the session would never start; use a value from 1 to "
                                  f"{n} or add datasets")

    def check_datasets(self, catalog: Iterable[Mapping[str, Any]]) -> None:
        """Refuse references to datasets the catalog does not have, listing the ones it has."""
        rows = list(catalog)
        for option, refs in (("--datasets", self.datasets), ("--test-datasets", self.test_datasets)):
            for ref in refs:
                runner, name = split_ref(ref)
                if not any(r["name"] == name and runner in (None, r["runner"]) for r in rows):
                    where = f"runner {runner!r}" if runner else "any runner"
                    known = sorted({r["name"] for r in rows if runner in (None, r["runner"])})
                    raise CellConfigError(f"{option}: no dataset {name!r} on {where}",
                                          f"choose from {', '.join(known) or 'nothing yet'} "
                                          "(see %fed datasets)")

    def tasks(self) -> list[dict[str, Any]]:
        """One hfl task per training dataset, each with its test dataset paired by position."""
        from jupyter_fed.client.taskgroup import TaskBuilder

        n = len(self.datasets)
        tests: list[str | None] = [*self.test_datasets] * n if len(self.test_datasets) == 1 \
            else [*self.test_datasets] or [None] * n
        out = []
        for ref, test in zip(self.datasets, tests, strict=True):
            runner, name = split_ref(ref)
            out.append(TaskBuilder().hfl(name, split_ref(test)[1] if test else None, runner=runner))
        return out

    # launching ----------------------------------------------------------------------------------
    def launch(self, client: Client, on_created: Callable[[Session], None] | None = None) -> Session:
        """Create, start and join the session; on a refused join the session is cancelled.

        Parameters
        ----------
        client
            The SDK client to use.
        on_created
            Called with the session as soon as it exists (the magic stores it for the user then).
        """

        self.check()
        with fed_errors("the session was refused", CellConfigError):
            session = client.create_fl_session(
                name=self.name or f"{self.package} on {', '.join(self.datasets)}",
                description=self.description, min_num_clients=self.min_clients or len(self.datasets),
                num_rounds=self.rounds, package_name=self.package,
                model_config=self.model_config, data_config=self.data_config,
                round_timeout=self.round_timeout)
        if on_created is not None:
            on_created(session)
        join_or_cancel(session, self.tasks())
        return session

    # rendering ----------------------------------------------------------------------------------
    def to_cell(self, var: str = "_fed_session") -> str:
        """The ``%%federate`` cell that builds this spec (flat body when unambiguous)."""
        import yaml

        line = ["%%federate", self.package]
        if self.datasets:
            line += ["--datasets", ",".join(self.datasets)]
        if self.test_datasets:
            line += ["--test-datasets", ",".join(self.test_datasets)]
        line += ["--rounds", str(self.rounds)]
        if self.min_clients is not None:
            line += ["--min-clients", str(self.min_clients)]
        if self.name:
            line += ["--name", shlex.quote(self.name)]
        if var != "_fed_session":
            line += ["-o", var]
        model = copy.deepcopy(self.model_config)
        strategy = model.get("strategy")
        if isinstance(strategy, dict) and strategy.get("params") == {}:
            model["strategy"] = {"name": strategy.get("name")}  # reads better; params default to {}
        params = model.get("model", {}).get("params") if isinstance(model.get("model"), dict) else None
        if isinstance(params, dict) and params.get("input_size") == len(
                self.data_config.get("predictors") or [None]):
            del params["input_size"]  # the magic fills it in, and it then follows edited predictors
        keys = _notebook(self.package).data_keys
        flat = not (set(model) & {*keys, *SESSION_KEYS, "model_config", "data_config"}) \
            and set(self.data_config) <= set(keys)
        body: dict[str, Any] = {**self.data_config, **model} if flat else {
            "model_config": model, "data_config": self.data_config}
        if self.description:
            body["description"] = self.description
        text = yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=100)
        return " ".join(line) + "\n" + text
