"""``%%federate``: a session from one cell — configuration in the body, datasets on the line.

Packages with rounds (ffnet, glm, …) are driven here; one-shot packages (``eda``, ``stats``, …:
``Notebook.rounds`` false in their ``PackageSpec``) are handed to
:mod:`jupyter_fed.magics._analytics`, which shares the line options that apply to them. Which keys
of a body go where, what is filled in, and how results show, each package declares itself.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from jupyter_fed.client.reprs import fmt
from jupyter_fed.magics._analytics import AnalyticsSpec, model_keys, show_results
from jupyter_fed.magics._client import get_client, remember_session
from jupyter_fed.magics._display import in_kernel
from jupyter_fed.magics._errors import CellConfigError, SessionEndedError, fed_errors, usage_errors
from jupyter_fed.magics._fed import unquote
from jupyter_fed.magics._spec import SessionSpec
from jupyter_fed.wire.models import TERMINAL_STATUSES as TERMINAL

if TYPE_CHECKING:
    from jupyter_fed.client import Session

__all__ = ["FederateMagics", "failure_message"]



@magics_class
class FederateMagics(Magics):
    """``%%federate``: create, start and join a federated session, then watch it train."""

    @cell_magic
    @usage_errors
    @magic_arguments()
    @argument("package", help="the algorithm, e.g. ffnet (alias iai_ffnet); eda and stats run "
                              "an analytics session and show its results")
    @argument("-d", "--datasets", default=None, metavar="A,B",
              help="training datasets, one client each: name or runner/name, comma-separated")
    @argument("-t", "--test-datasets", default=None, metavar="T|T1,T2",
              help="test dataset for every client, or one per training dataset in the same order "
                   "(default: evaluate on the training data)")
    @argument("-r", "--rounds", type=int, default=None, help="federated rounds (default 10)")
    @argument("--min-clients", type=int, default=None, metavar="N",
              help="clients that must answer every round (default: one per training dataset)")
    @argument("-n", "--name", default=None, help="session name shown in listings")
    @argument("-s", "--strategy", default=None, metavar="NAME",
              help="server-side strategy, e.g. FedAvg, FedAdam, Median (sets strategy.name)")
    @argument("-o", "--out", default="_fed_session", metavar="VAR",
              help="variable that receives the Session (default _fed_session)")
    @argument("--no-wait", action="store_true",
              help="return once the session is started; it keeps running in the background")
    @argument("--timeout", type=float, default=None, metavar="SECONDS",
              help="stop waiting after this many seconds (the session keeps running)")
    @argument("--mode", default=None, metavar="MODE",
              help="eda only: individual (default) or intersect (on a record linkage's "
                   "intersection; the body names clients, paired_columns, prl_session_id)")
    @argument("--prl", default=None, metavar="SESSION_ID",
              help="eda --mode intersect, splitnn: the prl session whose linked rows to use, "
                   "e.g. --prl {linked.id} "
                   "(wins over prl_session_id in the body)")
    @argument("--simulate", type=int, default=None, metavar="N",
              help="run on N simulated clients: partitions of --dataset, the same package code "
                   "and plan as on runners (--test-datasets then names a test set every client "
                   "evaluates on)")
    @argument("--partition", default="iid", metavar="HOW",
              help="with --simulate: iid (default), dirichlet:ALPHA (label skew, e.g. "
                   "dirichlet:0.5) or column:NAME (one client per value)")
    @argument("--dataset", default=None, metavar="VAR|PATH",
              help="with --simulate: the rows to partition, a DataFrame variable or a "
                   "parquet/csv path")
    @argument("--engine", default="local", metavar="ENGINE",
              help="with --simulate: where the clients run: local (default), ray or dask")
    def federate(self, line: str, cell: str) -> None:
        """Train across silos from one cell: the body is the session's configuration.

        The body is YAML or JSON, either flat — ``predictors`` and ``target`` go to
        ``data_config``, every other key to ``model_config`` — or with ``model_config:`` and
        ``data_config:`` sections. ``name``, ``description``, ``rounds``, ``min_clients``,
        ``datasets``, ``test_datasets`` and ``round_timeout`` may also appear in the body; options
        on the magic line win. Conveniences: ``model.params.input_size`` defaults to the number of
        predictors, and ``predictors`` (with ``target`` given) to the columns every training
        dataset has except the target.

        The cell creates and starts the session, joins one client per training dataset, stores the
        Session in VAR at once, shows a live panel (metrics per round, progress, each client's
        errors, a Stop button) and waits for the end unless ``--no-wait``. A refused configuration
        or a failed session is reported as one message naming the field or the runner.

        ``--simulate N`` runs the same session on N simulated clients instead: partitions of
        ``--dataset`` (a DataFrame variable or a parquet/csv path), cut by ``--partition``, on the
        ``--engine`` (``local``, ``ray``, ``dask``); ``--test-datasets`` then names a test set.

        ``eda`` and ``stats`` run one analytics step per dataset (``--datasets``, ``-o``,
        ``--name``, ``--no-wait`` and ``--timeout`` apply) and then show the results: for EDA the
        describe table and the pooled histograms, for stats the merged describe table and the
        correlation matrix. Their body is flat: EDA takes ``epsilon``, ``mechanism``, ``bins``
        (and the other EDA options) and ``columns: [...]`` for every dataset or a per-dataset
        ``data_config: {dataset: [columns]}``; stats takes ``contract`` (one rule a line),
        ``send_action``, ``receive_action``, ``columns``, ``filter`` and ``condition_on``.
        ``prl`` (record linkage) names no ``--datasets``: its body's ``clients:`` section gives
        each client (by the name later vertical sessions use) its datasets and id columns.
        ``eda --mode intersect`` explores a linkage's intersection: the body's ``clients:``
        section gives each client its ``data:`` dataset and ``columns``, with
        ``paired_columns`` and ``prl_session_id`` (or ``--prl``) beside it.

        Examples
        --------
        ::

            %%federate ffnet --datasets train_silo0,train_silo1 --test-datasets test --rounds 3 -o s
            target: y
            model:
              params: {hidden_layer_sizes: [16, 8], output_size: 2}
            optimizer: {name: SGD, params: {learning_rate: 0.1}}

            %%federate ffnet --simulate 20 --partition dirichlet:0.5 --dataset frame -o sim
            target: y
            model:
              params: {hidden_layer_sizes: [16, 8], output_size: 2}

            %%federate eda --datasets train_silo0,train_silo1 -o eda
            epsilon: 1.0
            bins: 20
            columns: [x0, x1, y]

            %%federate stats --datasets train_silo0,train_silo1 -o st
            contract: |
              COUNT(x0) >= 100
            columns: [x0, x1, y]
            filter: x0 > -3

            %%federate prl -o linked
            protocol: keyed_hash
            clients:
              hospital-a: {train: hospital-a/patients, id_columns: [patient_id]}
              hospital-b: {train: hospital-b/patients, id_columns: [pid], normalise: [trim]}

            %%federate eda --mode intersect --prl {linked.id} -o inter
            epsilon: 1.0
            paired_columns: {hospital-a: [x0], hospital-b: [x8]}
            clients:
              hospital-a: {data: hospital-a/patients, columns: [x0, x1]}
              hospital-b: {data: hospital-b/patients, columns: []}
        """
        args = parse_argstring(self.federate, line)
        var = args.out
        if not var.isidentifier() or keyword.iskeyword(var):
            raise CellConfigError(f"-o {var!r} is not a valid variable name",
                                  "use letters, digits and '_', e.g. -o session")
        package = _with_mode(_canonical(args.package), args.mode, args.prl)
        if not _takes_rounds(package):  # a one-shot package (eda, stats, pca, …)
            if args.simulate is not None:
                raise CellConfigError(f"--simulate runs packages with rounds, not {package}",
                                      "simulate ffnet, glm, gbm, …")
            self._analytics(package, args, cell, var)
            return
        spec = SessionSpec.from_cell(
            args.package, cell, datasets=args.datasets, test_datasets=args.test_datasets,
            rounds=args.rounds, min_clients=args.min_clients, name=unquote(args.name))
        spec.with_strategy(unquote(args.strategy))
        if args.simulate is not None:
            from jupyter_fed.magics._simulate import launch_simulation

            session = launch_simulation(get_client(), spec, args, self.shell.user_ns
                                        if self.shell is not None else {}, self._storer(var))
            print(f"session {session.id} started: {session.package}, {spec.rounds} round(s), "
                  f"{args.simulate} simulated client(s), partition {args.partition}; the "
                  f"Session is in {var!r}")
        else:
            spec.check()
            client = get_client()
            with fed_errors("reading the catalog"):
                catalog = client.datasets().to_dict("records")
            spec.check_datasets(catalog)
            for note in spec.fill_defaults(catalog):
                print(f"note: {note}")

            store = self._storer(var)
            session = spec.launch(client, on_created=store)
            print(f"session {session.id} started: {session.package}, {spec.rounds} round(s), "
                  f"{len(spec.datasets)} client(s); the Session is in {var!r}")
        if not in_kernel():
            if not args.no_wait:
                self._wait_plain(session, var, args.timeout)
            return
        from IPython.display import display

        from jupyter_fed.widgets import LiveMetrics

        panel = LiveMetrics(session)
        display(panel)
        if args.no_wait:
            return
        self._wait_kernel(session, panel, var, args.timeout)

    def _storer(self, var: str) -> Callable[[Session], None]:
        """Put the session in the user's namespace as soon as it exists, so a failure later in
        the cell still leaves it inspectable."""
        user_ns: dict[str, Any] = self.shell.user_ns if self.shell is not None else {}

        def store(session: Session) -> None:
            user_ns[var] = session
            remember_session(session)

        return store

    # analytics ----------------------------------------------------------------------------------
    def _analytics(self, package: str, args: Any, cell: str, var: str) -> None:
        given = [opt for opt, value in (("--test-datasets", args.test_datasets),
                                        ("--rounds", args.rounds),
                                        ("--min-clients", args.min_clients),
                                        ("--strategy", args.strategy)) if value is not None]
        if given:
            raise CellConfigError(f"{given[0]} does not apply to %%federate {package}",
                                  "an analytics session is one step on every dataset; drop it")
        spec = AnalyticsSpec.from_cell(package, cell, datasets=args.datasets,
                                       name=unquote(args.name))
        if args.prl:  # splitnn keeps the linkage in its model_config, eda intersect in data_config
            where = spec.model_config if "prl_session_id" in model_keys(package) \
                else spec.data_config
            where["prl_session_id"] = unquote(args.prl)
        spec.check()
        client = get_client()
        with fed_errors("reading the catalog"):
            catalog = client.datasets().to_dict("records")
        SessionSpec(package, spec.datasets).check_datasets(catalog)
        store = self._storer(var)
        session = spec.launch(client, on_created=store)
        print(f"session {session.id} started: {package} on {len(spec.datasets)} dataset(s); the "
              f"Session is in {var!r}")
        if args.no_wait:
            print(f"{var}.wait() waits for it, {var}.results() then returns the results")
            return
        try:
            with fed_errors(f"waiting for session {session.id}"):
                session.wait(args.timeout, poll=0.5, raise_on_failure=False)
                info = session.info()
        except KeyboardInterrupt:
            print(f"stopped waiting; session {session.id} keeps running — {var}.wait() waits "
                  f"again, {var}.cancel() stops it")
            return
        if info["status"] not in TERMINAL:
            print(f"still running after {args.timeout or 0:g} s — {var}.wait() waits again")
            return
        if info["status"] != "completed":
            raise SessionEndedError(failure_message(info), f"{var}.logs() has each runner's messages")
        show_results(session, var)

    # waiting ------------------------------------------------------------------------------------
    def _wait_kernel(self, session: Session, panel: Any, var: str, timeout: float | None) -> None:
        try:
            with fed_errors(f"waiting for session {session.id}"):
                session.wait(timeout, raise_on_failure=False)  # False for failed *or* timed out
                ended = session.status() in TERMINAL
        except KeyboardInterrupt:
            print(f"stopped waiting; session {session.id} keeps running — {var}.wait() waits "
                  f"again, {var}.cancel() stops it")
            return
        panel.refresh()
        if not ended:
            print(f"still running after {timeout or 0:g} s; the panel keeps updating — "
                  f"{var}.wait() waits again")
            return
        panel.stop()
        self._report(session, var)

    def _wait_plain(self, session: Session, var: str, timeout: float | None) -> None:
        try:
            with fed_errors(f"waiting for session {session.id}"):
                session.wait(timeout, poll=0.5, raise_on_failure=False, progress=True)
                ended = session.status() in TERMINAL
        except KeyboardInterrupt:
            print(f"stopped waiting; session {session.id} keeps running — {var}.cancel() stops it")
            return
        if ended:
            self._report(session, var)
        else:
            print(f"still running after {timeout or 0:g} s — {var}.wait() waits again")

    @staticmethod
    def _report(session: Session, var: str) -> None:
        with fed_errors(f"reading session {session.id}"):
            info = session.info()
            latest = session.metrics().latest()
        if info["status"] != "completed":
            raise SessionEndedError(failure_message(info),
                                    f"{var}.logs() has each runner's messages")
        shown = ", ".join(f"{k} {fmt(v)}" for k, v in latest.items() if k != "num_examples")
        started, finished = info.get("started_at"), info.get("finished_at")
        took = ""
        if started and finished:
            from datetime import datetime

            seconds = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
            took = f" in {seconds:.1f} s"
        print(f"session {info['id']} completed {info['current_round']} round(s){took}"
              f"{'; ' + shown if shown else ''}")
        for warning in info.get("warnings") or []:
            print(f"warning: {warning}")


def _takes_rounds(package: str) -> bool:
    """What the package declares (``Notebook.rounds``); unknown names are refused later, by name."""
    from jupyter_fed.errors import FedError
    from jupyter_fed.packages import get_package

    try:
        return get_package(package).notebook.rounds
    except FedError:
        return True


def _with_mode(package: str, mode: str | None, prl: str | None) -> str:
    """``eda --mode intersect`` is the ``eda_intersect`` package; other modes are refused."""
    if mode is None:
        if prl and package != "eda_intersect" and "prl_session_id" not in model_keys(package):
            raise CellConfigError(f"--prl does not apply to %%federate {package}",
                                  "it names the record linkage of eda --mode intersect and "
                                  "splitnn; drop it")
        return package
    chosen = unquote(mode).lower()
    if package not in ("eda", "eda_intersect"):
        raise CellConfigError(f"--mode applies to %%federate eda, not {package}",
                              "drop --mode")
    if chosen == "individual" and package == "eda" and not prl:
        return "eda"
    if chosen == "intersect":
        return "eda_intersect"
    raise CellConfigError(f"--mode {mode!r} is not a mode of EDA" if chosen != "individual"
                          else "--prl applies to --mode intersect",
                          "use --mode individual (each dataset on its own) or --mode intersect "
                          "(a record linkage's intersection)")


def _canonical(package: str) -> str:
    """The package's registered name (``iai_eda`` → ``eda``); unknown names pass through."""
    from jupyter_fed.errors import FedError
    from jupyter_fed.packages import get_package

    try:
        return get_package(package).name
    except FedError:
        return package  # the coordinator refuses it with the list of packages


def failure_message(info: dict[str, Any]) -> str:
    """Why a session ended: its own error plus each distinct client error, with runner names."""
    parts = [f"session {info['id']} {info['status']}" + (f": {info['error']}" if info.get("error")
                                                           else "")]
    seen: set[str] = set()
    for c in info.get("clients") or []:
        err = c.get("error")
        if err and err not in seen:
            seen.add(err)
            parts.append(f"client {c['client_id']} on runner {c['runner']}: {err}")
    return "; ".join(parts)
