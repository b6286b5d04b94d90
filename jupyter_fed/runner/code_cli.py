"""``jupyter-fed runner code list|show|approve|deny``: a custodian reviews builders' own code.

Like the other ``runner`` commands these work on the runner's home folder directly (being able to
read it already means full control), also while the runner is serving; each decision is written
to the audit log as the REST routes write theirs.
"""

from __future__ import annotations

import argparse
import getpass
import json
from typing import Any

__all__ = ["add_code_command", "run_code_command"]


def add_code_command(cmd: Any) -> None:
    """Add ``code`` to the ``runner`` commands (``cmd(name, help)`` makes a sub-parser)."""
    p = cmd("code", "review builders' custom code: list, show, approve for datasets, deny")
    p.add_argument("action", choices=["list", "show", "approve", "deny"])
    p.add_argument("code_id", nargs="?", help="the request's id (show, approve, deny)")
    p.add_argument("--dataset", action="append", default=[], dest="datasets",
                   help="dataset the code may run on (approve; repeatable)")
    p.add_argument("--note", default="", help="a note for the builder")
    p.add_argument("--status", choices=["pending", "approved", "denied"], help="list only these")
    p.add_argument("--json", action="store_true")


def run_code_command(args: argparse.Namespace, settings: Any, store: Any) -> int:
    from jupyter_fed.errors import ConfigError
    from jupyter_fed.runner.audit import AuditLog
    from jupyter_fed.runner.custom_code import CodeStore

    codes = CodeStore(store)
    if args.action == "list":
        rows = codes.list(status=args.status)
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        from jupyter_fed.runner.cli import print_rows

        print_rows([{**r, "digest": r["digest"][:16], "datasets": ",".join(r["datasets"])}
                     for r in rows], ["id", "principal", "name", "digest", "status", "datasets",
                                      "submitted_at"])
        return 0
    if not args.code_id:
        raise ConfigError(f"`code {args.action}` needs a request id",
                          "see `jupyter-fed runner code list`")
    if args.action == "show":
        row = codes.get(args.code_id, source=True)
        if args.json:
            print(json.dumps(row, indent=2))
            return 0
        print(f"{row['id']}: {row['package']}\nsubmitted by {row['principal']} at "
              f"{row['submitted_at']}; {row['status']}"
              f"{' for ' + ', '.join(row['datasets']) if row['datasets'] else ''}")
        if row["description"]:
            print(f"description: {row['description']}")
        for path, text in sorted(row["files"].items()):
            print(f"\n===== {path} =====\n{text}")
        return 0
    reviewer = f"cli:{getpass.getuser()}"
    row = codes.decide(args.code_id, reviewer, approve=args.action == "approve",
                       datasets=args.datasets, note=args.note)
    AuditLog(store).record(principal=reviewer, method="CLI",
                           path=f"/v1/code/{args.code_id}/{args.action}",
                           dataset=",".join(row["datasets"]) or None,
                           package=row["package"][:200], step=f"{args.action}_code:{row['id']}",
                           status=200)
    print(f"{row['id']} {row['status']}"
          f"{' for ' + ', '.join(row['datasets']) if row['datasets'] else ''}: {row['package']}")
    return 0
