"""``jupyter-fed`` (also ``jupyter fed``): runner administration, the demo and simulations."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jupyter_fed.errors import FedError


def _coordinator_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sub.add_parser("coordinator", add_help=False,
                   help="run the coordinator headless (the Jupyter server extension alone); "
                   "takes Jupyter server options such as --port and --JupyterFedApp.state_dir")


def _run_coordinator(argv: list[str]) -> int:
    from jupyter_fed.server.app import JupyterFedApp

    JupyterFedApp.launch_instance(argv=argv)
    return 0


USAGE, FAILURE = 2, 1
"""Exit codes: the command was given wrongly (fix the command) / it could not be done."""


def _say(message: str, hint: str = "") -> None:
    """One line on stderr: what was wrong, then what to do."""
    line = " ".join(f"jupyter-fed: error: {message}".split())
    print(line + (f" — {' '.join(hint.split())}" if hint else ""), file=sys.stderr)


def _report(exc: BaseException, args: argparse.Namespace) -> int:
    """Turn any error a command raises into one line and an exit code, never a traceback."""
    import errno

    from pydantic import ValidationError

    from jupyter_fed.errors import ConfigError, ConflictError, NotFoundError, PermissionDenied

    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "value"
            parts.append(f"{field} {err.get('input')!r}: {err['msg'].removeprefix('Value error, ')}"
                         if isinstance(err.get("input"), (str, int, float)) else
                         f"{field}: {err['msg'].removeprefix('Value error, ')}")
        _say("invalid " + "; ".join(parts), "see --help for what each argument accepts")
        return USAGE
    if isinstance(exc, FedError):
        _say(exc.message, exc.hint)
        # asked for something that cannot be done as asked (bad value, wrong name, refused option)
        usage = (ConfigError, ConflictError, NotFoundError, PermissionDenied)
        return USAGE if isinstance(exc, usage) else FAILURE
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRINUSE:
            where = f"{getattr(args, 'host', '')}:{getattr(args, 'port', '')}".strip(":")
            _say(f"the address {where} is already in use", "stop what listens there, or pick "
                 "another port with --port (0 picks a free one)")
        elif exc.errno == errno.EADDRNOTAVAIL:
            _say(f"cannot listen on {getattr(args, 'host', '?')}: not an address of this machine",
                 "use 127.0.0.1, 0.0.0.0 or one of this machine's addresses with --host")
        else:
            what = f" {exc.filename}" if exc.filename else ""
            _say(f"{exc.strerror or type(exc).__name__}{what}", "")
        return FAILURE
    import os

    if os.environ.get("JUPYTER_FED_DEBUG"):
        raise exc
    _say(f"internal error: {type(exc).__name__}: {exc}",
         "this is a bug; run again with JUPYTER_FED_DEBUG=1 for the traceback and report it")
    return FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jupyter-fed", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    from jupyter_fed.runner.cli import add_runner_commands, run_runner_command

    add_runner_commands(sub)
    _coordinator_command(sub)
    from jupyter_fed.demo.cli import add_demo_command

    add_demo_command(sub)
    from jupyter_fed.simulation.cli import add_simulate_command

    add_simulate_command(sub)
    args, extra = parser.parse_known_args(argv)  # argparse: one usage line, exit code 2
    if args.cmd == "coordinator":
        return _run_coordinator(extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.cmd == "runner":
            return run_runner_command(args)
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return _report(exc, args)


if __name__ == "__main__":
    sys.exit(main())
