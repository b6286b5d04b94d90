"""``%%federate``: a session from one cell — configuration in the body, datasets on the line."""

from __future__ import annotations

import keyword
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from jupyter_fed.client._repr import fmt
from jupyter_fed.magics._client import get_client, remember_session
from jupyter_fed.magics._display import in_kernel
from jupyter_fed.magics._errors import CellConfigError, SessionEndedError, fed_errors, usage_errors
from jupyter_fed.magics._fed import unquote
from jupyter_fed.magics._spec import SessionSpec

if TYPE_CHECKING:
    from jupyter_fed.client import Session

__all__ = ["FederateMagics", "failure_message"]

TERMINAL = ("completed", "failed", "cancelled", "interrupted")


@magics_class
class FederateMagics(Magics):
    """``%%federate``: create, start and join a federated session, then watch it train."""

    @cell_magic
    @usage_errors
    @magic_arguments()
    @argument("package", help="the algorithm, e.g. ffnet (alias iai_ffnet)")
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
              help="return once the session is started; it keeps training in the background")
    @argument("--timeout", type=float, default=None, metavar="SECONDS",
              help="stop waiting after this many seconds (the session keeps running)")
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

        Examples
        --------
        ::

            %%federate ffnet --datasets train_silo0,train_silo1 --test-datasets test --rounds 3 -o s
            target: y
            model:
              params: {hidden_layer_sizes: [16, 8], output_size: 2}
            optimizer: {name: SGD, params: {learning_rate: 0.1}}
        """
        args = parse_argstring(self.federate, line)
        var = args.out
        if not var.isidentifier() or keyword.iskeyword(var):
            raise CellConfigError(f"-o {var!r} is not a valid variable name",
                                  "use letters, digits and '_', e.g. -o session")
        spec = SessionSpec.from_cell(
            args.package, cell, datasets=args.datasets, test_datasets=args.test_datasets,
            rounds=args.rounds, min_clients=args.min_clients, name=unquote(args.name))
        spec.with_strategy(unquote(args.strategy))
        spec.check()
        client = get_client()
        with fed_errors("reading the catalog"):
            catalog = client.datasets().to_dict("records")
        spec.check_datasets(catalog)
        for note in spec.fill_defaults(catalog):
            print(f"note: {note}")

        user_ns: dict[str, Any] = self.shell.user_ns if self.shell is not None else {}

        def store(session: Session) -> None:
            user_ns[var] = session
            remember_session(session)

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
