"""``jupyter-fed`` (also ``jupyter fed``): runner administration and the demo."""

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jupyter-fed", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    from jupyter_fed.runner.cli import add_runner_commands, run_runner_command

    add_runner_commands(sub)
    _coordinator_command(sub)
    from jupyter_fed.demo.cli import add_demo_command

    add_demo_command(sub)
    args, extra = parser.parse_known_args(argv)
    if args.cmd == "coordinator":
        return _run_coordinator(extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.cmd == "runner":
            return run_runner_command(args)
        return args.func(args)
    except FedError as exc:
        print(f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
