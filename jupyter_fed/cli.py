"""``jupyter-fed`` (also ``jupyter fed``): runner administration and the demo."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from jupyter_fed.errors import FedError


def _runner_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from jupyter_fed.runner.settings import default_home

    runner = sub.add_parser("runner", help="a data custodian's runner").add_subparsers(
        dest="runner_cmd", required=True)
    home = {"type": Path, "default": None, "help": f"runner home folder (default {default_home()})"}

    p = runner.add_parser("init", help="create a runner home folder and print its admin token")
    p.add_argument("--home", **home)
    p.add_argument("--name", required=True, help="name model builders see")
    p.add_argument("--data-root", action="append", type=Path, required=True, dest="data_roots",
                   help="folder datasets may be registered from (repeatable)")
    p.add_argument("--max-workers", type=int, default=2)

    p = runner.add_parser("serve", help="serve the runner over HTTP")
    p.add_argument("--home", **home)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--ready-file", type=Path, help="write {url, pid} here once listening")

    p = runner.add_parser("register", help="register a parquet or csv file as a dataset")
    p.add_argument("--home", **home)
    p.add_argument("name")
    p.add_argument("path")
    p.add_argument("--description", default="")
    p.add_argument("--tag", action="append", default=[], dest="tags")
    p.add_argument("--id-column", action="append", default=[], dest="id_columns")

    p = runner.add_parser("datasets", help="list registered datasets")
    p.add_argument("--home", **home)
    p.add_argument("--json", action="store_true")


def _run_runner(args: argparse.Namespace) -> int:
    from jupyter_fed.runner.settings import RunnerSettings, default_home

    home = args.home or default_home()
    if args.runner_cmd == "init":
        from jupyter_fed.runner.process import init_runner

        settings, token = init_runner(home, args.name, args.data_roots, max_workers=args.max_workers)
        print(f"runner {settings.name!r} created in {settings.home}")
        print("admin token (shown once, store it safely):")
        print(token)
        return 0
    if args.runner_cmd == "serve":
        from jupyter_fed.runner.process import serve

        serve(home, args.host, args.port, args.ready_file)
        return 0
    settings = RunnerSettings.load(home)
    from jupyter_fed.runner.store import RunnerStore

    store = RunnerStore(settings.db_path)
    try:
        if args.runner_cmd == "register":
            from jupyter_fed.runner.app import register_dataset
            from jupyter_fed.wire import DatasetRegistration

            info = register_dataset(settings, store, DatasetRegistration(
                name=args.name, path=str(Path(args.path).absolute()), description=args.description,
                tags=args.tags, id_columns=args.id_columns))
            print(f"registered {info.name!r}: {info.num_rows} rows, {info.num_columns} columns")
        elif args.runner_cmd == "datasets":
            rows = store.list_datasets()
            if args.json:
                print(json.dumps(rows, indent=2))
            for d in [] if args.json else rows:
                print(f"{d['name']:<24} {d['num_rows']:>10} rows {d['num_columns']:>4} cols  "
                      f"{','.join(d['tags'])}  {d['description']}")
    finally:
        store.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jupyter-fed", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    _runner_commands(sub)
    from jupyter_fed.demo.cli import add_demo_command

    add_demo_command(sub)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "runner":
            return _run_runner(args)
        return args.func(args)
    except FedError as exc:
        print(f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
