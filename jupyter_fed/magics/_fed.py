"""``%fed``: look around the federation (runners, datasets, sessions) and choose the client."""

from __future__ import annotations

import inspect
import os
from typing import TYPE_CHECKING, Any, overload

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from jupyter_fed.client.reprs import clients_rows, fmt, session_summary_html, table_text
from jupyter_fed.magics._client import get_client, last_session, set_client
from jupyter_fed.magics._display import show, show_table
from jupyter_fed.magics._errors import FedUsageError, fed_errors, usage_errors

if TYPE_CHECKING:
    from jupyter_fed.client import Session

__all__ = ["FedMagics"]

COMMANDS = ("runners", "datasets", "sessions", "status", "connect", "join", "use", "request",
            "requests")
REQUEST_COLUMNS = ["runner", "request_id", "dataset", "packages", "epsilon", "status", "note",
                   "created_at"]
_WATCHED: dict[tuple[str, str], str] = {}
"""(runner, request id) → last status seen, for requests filed from this kernel: a decision is
announced once, by the next %fed command after it."""
DATASET_COLUMNS = ["runner", "name", "description", "tags", "num_rows", "num_columns", "columns"]
RUNNER_COLUMNS = ["name", "url", "status", "latency_ms", "datasets", "version", "error"]
SESSION_COLUMNS = ["id", "name", "package", "status", "round", "created_at", "error"]


@overload
def unquote(value: str) -> str: ...


@overload
def unquote(value: None) -> None: ...


def unquote(value: str | None) -> str | None:
    """IPython splits magic lines without removing quotes; drop one matching pair."""
    if value and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


@magics_class
class FedMagics(Magics):
    """``%fed``: runners, datasets and sessions of the client the magics use."""

    @line_magic
    @usage_errors
    @magic_arguments()
    @argument("command", choices=COMMANDS, metavar="COMMAND",
              help="runners | datasets | sessions | status [ID] | connect URL | join BLOB | use VAR "
                   "| request DATASET --runner R | requests")
    @argument("target", nargs="?", default=None, metavar="ARG",
              help="the session ID for status (default: the last %%%%federate session), the URL for "
                   "connect, the invitation for join, the variable holding a Client for use")
    @argument("--token", default=None,
              help="connect: the bearer token of the runner or server at URL")
    @argument("--runner", default=None, metavar="NAME",
              help="connect: add URL as a runner with this name to the current client, instead of "
                   "connecting to a coordinator at URL; join: the name to give the runner")
    @argument("--fingerprint", default=None, metavar="SHA256",
              help="connect --runner: the certificate fingerprint an https runner printed at start")
    @argument("--password", default=None,
              help="join: the invitation's password (omit it to be prompted, which keeps it out of "
                   "the notebook; scripts may set JUPYTER_FED_INVITE_PASSWORD instead)")
    @argument("--tag", default=None, help="datasets: only datasets carrying this tag")
    @argument("--package", action="append", default=None, dest="packages",
              help="request: a package (or package.step) to ask for (repeatable; default any)")
    @argument("--epsilon", type=float, default=None,
              help="request: the epsilon budget to ask for (default: the dataset's policy)")
    @argument("--reason", default="", help="request: why, for the custodian")
    def fed(self, line: str) -> None:
        """Look around the federation from a notebook.

        ``%fed runners`` lists the connected runners with their health; ``%fed datasets`` the
        catalog across runners (schema and row counts, never rows); ``%fed sessions`` every session
        and ``%fed status [ID]`` one session's progress, metrics and clients.

        ``%fed connect URL --runner NAME --token T`` adds a runner; ``%fed connect URL [--token T]``
        connects to a coordinator at URL instead; ``%fed join BLOB`` accepts an invitation;
        ``%fed use VAR`` makes the magics use the Client in variable VAR (by default they use
        ``jupyter_fed.connect()``, made on first use).

        Examples
        --------
        ::

            %fed datasets --tag demo
            %fed connect http://127.0.0.1:8765 --runner silo0 --token jfr_...
            %fed use client
            %fed status 3fa2c1d0e9
            %fed request admissions --runner hospital --package eda --epsilon 1 --reason "cohorts"
            %fed requests

        ``%fed request DATASET --runner R`` asks R's custodian for a dataset (or for more of
        it); ``%fed requests`` lists your requests and their answers. A decision on a request
        filed from this notebook is announced by the next ``%fed`` command after it.
        """
        args = parse_argstring(self.fed, line)
        handler = getattr(self, f"_{args.command}")
        handler(args)
        if args.command != "requests":
            _announce_decisions()

    # commands -----------------------------------------------------------------------------------
    def _runners(self, args: Any) -> None:
        with fed_errors("listing runners"):
            rows = get_client().runners().to_dict("records")
        show_table(rows, RUNNER_COLUMNS, caption=f"{len(rows)} runner(s)",
                   empty="no runners connected — add one with %fed connect URL --runner NAME "
                         "--token TOKEN")

    def _datasets(self, args: Any) -> None:
        import warnings

        with fed_errors("reading the catalog"), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rows = get_client().datasets(tag=unquote(args.tag)).to_dict("records")
        for w in caught:  # one silo being down must not hide the others: say so, list the rest
            print(f"warning: {w.message}")
        tag = f" tagged {args.tag!r}" if args.tag else ""
        show_table(rows, DATASET_COLUMNS, caption=f"{len(rows)} dataset(s){tag} across runners",
                   empty=f"no datasets{tag} — see %fed runners for the connected runners")

    def _sessions(self, args: Any) -> None:
        with fed_errors("listing sessions"):
            rows = [_session_row(s.info()) for s in get_client().sessions()]
        show_table(rows, SESSION_COLUMNS, caption=f"{len(rows)} session(s)",
                   empty="no sessions yet — start one with %%federate")

    def _status(self, args: Any) -> None:
        session = self._session(args.target)
        with fed_errors(f"reading session {session.id}"):
            info = session.info()
            latest = session.metrics().latest()
        show(status_text(info, latest), session_summary_html(info, latest))

    def _connect(self, args: Any) -> None:
        url, token = unquote(self._need(args, "connect", "URL")), unquote(args.token)
        runner = unquote(args.runner)
        if runner:
            if not token:
                raise FedUsageError("%fed connect --runner needs --token",
                                    "ask the runner's custodian for a token")
            extra = {"fingerprint": unquote(args.fingerprint)} if args.fingerprint else {}
            with fed_errors(f"connecting runner {args.runner!r}"):
                info = get_client().add_runner(runner, url, token, **extra)
            print(f"runner {info['name']!r} connected at {info['url']} "
                  f"(version {info.get('version')}, {fmt(info.get('latency_ms'))} ms)")
            return
        import jupyter_fed
        from jupyter_fed.client import connect

        kwargs = {"token": token} if token else {}
        if token and "token" not in inspect.signature(connect).parameters:
            raise FedUsageError("this version's jupyter_fed.connect() takes no token",
                                "connect runners with %fed connect URL --runner NAME --token T")
        with fed_errors(f"connecting to {url}"):
            client = jupyter_fed.connect(url, **kwargs)
        set_client(client)
        print(f"the magics now use the coordinator at {url}")

    def _join(self, args: Any) -> None:
        blob = unquote(self._need(args, "join", "BLOB")) or ""
        join = getattr(get_client(), "join", None)
        if not callable(join):
            raise FedUsageError("%fed join is not available in this version: the SDK cannot accept "
                                "invitations yet", "ask the custodian for the runner's URL and a "
                                "token, then run %fed connect URL --runner NAME --token T")
        password = unquote(args.password)
        if password is None:  # scripts and CI set it in the environment, as the runner CLI reads it
            password = os.environ.get("JUPYTER_FED_INVITE_PASSWORD") or None
        if password is None:
            password = _prompt("invitation password: ")
        with fed_errors("joining with the invitation"):
            info = join(blob, password, unquote(args.runner))
        print(f"runner {info.get('name')!r} connected at {info.get('url')} from the invitation")

    def _use(self, args: Any) -> None:
        var = self._need(args, "use", "VAR")
        user_ns: dict[str, Any] = self.shell.user_ns if self.shell is not None else {}
        if var not in user_ns:
            raise FedUsageError(f"no variable {var!r} in the notebook",
                                f"create it first: {var} = jupyter_fed.connect(...)")
        set_client(user_ns[var])
        print(f"the magics now use the client in {var!r}")

    def _request(self, args: Any) -> None:
        dataset = unquote(self._need(args, "request", "DATASET"))
        runner = unquote(args.runner)
        if not runner:
            raise FedUsageError("%fed request needs --runner", "write %fed request DATASET "
                                "--runner NAME (see %fed runners)")
        request_access = getattr(get_client(), "request_access", None)
        if not callable(request_access):
            raise FedUsageError("this client cannot file access requests",
                                "use a jupyter_fed client (%fed use VAR)")
        with fed_errors(f"asking {runner!r} for {dataset!r}"):
            req = request_access(runner, dataset, packages=args.packages, epsilon=args.epsilon,
                                 reason=unquote(args.reason) or "")
        _WATCHED[(runner, req.id)] = req.status
        print(f"{req} — the custodian of {runner!r} decides; %fed requests shows the answer")

    def _requests(self, args: Any) -> None:
        with fed_errors("listing your access requests"):
            frame = get_client().my_requests(unquote(args.runner))
        rows = frame.to_dict("records")
        for row in rows:
            key = (row["runner"], row["request_id"])
            if key in _WATCHED:
                _WATCHED[key] = row["status"]
            row["packages"] = ", ".join(row["packages"] or []) or "any"
        show_table(rows, REQUEST_COLUMNS, caption=f"{len(rows)} access request(s)",
                   empty="no access requests — file one with %fed request DATASET --runner R")

    # helpers ------------------------------------------------------------------------------------
    @staticmethod
    def _need(args: Any, command: str, what: str) -> str:
        if not args.target:
            raise FedUsageError(f"%fed {command} needs {what}", f"write %fed {command} {what}")
        return str(args.target)

    def _session(self, sid: str | None) -> Session:
        if sid:
            with fed_errors("finding the session"):
                return get_client().session(unquote(sid) or "")
        last = last_session()
        if last is None:
            raise FedUsageError("%fed status needs a session ID",
                                "list them with %fed sessions, then run %fed status ID")
        return last


def _announce_decisions() -> None:
    """One line for each request filed here that the custodian decided since it was last seen."""
    pending = {runner for (runner, _), status in _WATCHED.items() if status == "pending"}
    if not pending:
        return
    client = get_client()
    for runner in sorted(pending):
        try:
            mine = client.my_requests(runner).to_dict("records")
        except Exception:  # an unreachable runner must not break the command that just ran
            continue
        for row in mine:
            key = (runner, row["request_id"])
            if _WATCHED.get(key) == "pending" and row["status"] != "pending":
                _WATCHED[key] = row["status"]
                note = f" — {row['note']}" if row.get("note") else ""
                print(f"access request {row['request_id']} for {row['dataset']!r} at {runner!r}"
                      f" was {row['status']}{note}")


def _prompt(question: str) -> str:
    """Ask for a secret through the frontend; a clear message where nobody can answer."""
    import getpass

    try:
        return getpass.getpass(question)
    except Exception:  # e.g. StdinNotImplementedError when the frontend cannot prompt
        raise FedUsageError("%fed join needs the invitation's password and cannot prompt here",
                            "give --password PASSWORD") from None


def _session_row(info: dict[str, Any]) -> dict[str, Any]:
    return {**info, "round": f"{info['current_round']}/{info['num_rounds']}",
            "created_at": str(info.get("created_at") or "")[:19].replace("T", " ")}


def status_text(info: dict[str, Any], latest: dict[str, Any]) -> str:
    """A session's status as text (the terminal's version of ``Session._repr_html_``)."""
    lines = [f"{info['package']} session {info['id']} {info['name']!r}: {info['status']}, round "
             f"{info['current_round']}/{info['num_rounds']}"]
    if latest:
        lines.append("latest federated metrics: " + ", ".join(
            f"{k} {fmt(v)}" for k, v in latest.items() if k != "num_examples"))
    if info.get("error"):
        lines.append(f"error: {info['error']}")
    rows = clients_rows(info)
    if rows:
        lines.append(table_text(rows, ["client", "runner", "datasets", "status", "round", "error"]))
    return "\n".join(lines)
