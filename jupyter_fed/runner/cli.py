"""``jupyter-fed runner …``: what a data custodian types on the runner's machine.

These commands work on the runner's home folder directly (no token needed: being able to read the
home folder already means full control), so they also work while the runner is stopped.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyter_fed.runner.settings import RunnerSettings, default_home


def add_runner_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    runner = sub.add_parser("runner", help="a data custodian's runner").add_subparsers(
        dest="runner_cmd", required=True)
    home = {"type": Path, "default": None, "help": f"runner home folder (default {default_home()})"}

    def cmd(name: str, help: str) -> argparse.ArgumentParser:
        p = runner.add_parser(name, help=help)
        p.add_argument("--home", **home)
        return p

    p = cmd("init", "create a runner home folder, TLS certificate and admin token")
    p.add_argument("--name", required=True, help="name model builders see")
    p.add_argument("--data-root", action="append", required=True, dest="data_roots",
                   help="folder datasets may be registered from, or an object-storage prefix "
                   "such as s3://bucket/prefix/ (repeatable)")
    p.add_argument("--max-workers", type=int, default=2)
    p.add_argument("--hostname", action="append", default=[], dest="hostnames",
                   help="name or address the TLS certificate should also cover (repeatable)")
    p.add_argument("--public-url", help="address builders use, written into invitations")

    p = cmd("serve", "serve the runner over HTTPS")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--ready-file", type=Path, help="write {url, pid, fingerprint} once listening")
    p.add_argument("--insecure-http", action="store_true",
                   help="plain HTTP instead of TLS; refused unless --host is a loopback address")

    p = cmd("register", "register a parquet or csv file (or object) as a dataset")
    p.add_argument("name")
    p.add_argument("path", help="a file under a data root, or a URI under an allowed prefix "
                   "(s3://bucket/prefix/file.parquet; credentials from the runner's environment "
                   "or runner.json)")
    p.add_argument("--description", default="")
    p.add_argument("--tag", action="append", default=[], dest="tags")
    p.add_argument("--id-column", action="append", default=[], dest="id_columns")
    p.add_argument("--bounds", action="append", default=[], metavar="COLUMN=LOW:HIGH",
                   help="public bounds of a column's values, e.g. age=0:120 (repeatable): DP "
                        "releases clip to them at no privacy cost")
    p.add_argument("--bounds-file", type=Path, help="bounds of many columns: JSON "
                   "{column: [low, high]} or one COLUMN=LOW:HIGH a line")
    p.add_argument("--view", help="register only the rows this filter keeps, e.g. "
                   "\"age >= 18 AND region == 2\" (exact statistics of a subset)")
    _policy_options(p)

    p = cmd("data-root", "list, add or remove the folders (and object-storage prefixes) "
            "datasets may be registered from")
    p.add_argument("action", choices=["list", "add", "remove"])
    p.add_argument("path", nargs="?", help="folder, or prefix such as s3://bucket/prefix/, to add "
                   "or remove")

    p = cmd("datasets", "list registered datasets")
    p.add_argument("--json", action="store_true")

    p = cmd("policy", "show a dataset's privacy policy, or change it with the options")
    p.add_argument("name")
    _policy_options(p)

    p = cmd("user", "manage users")
    p.add_argument("action", choices=["create", "delete", "list"])
    p.add_argument("name", nargs="?")
    p.add_argument("--role", default="model_builder",
                   choices=["administrator", "data_custodian", "model_builder"])

    p = cmd("token", "issue, list or revoke scoped tokens")
    p.add_argument("action", choices=["create", "revoke", "list"])
    p.add_argument("target", nargs="?", help="user (create, list) or token id (revoke)")
    p.add_argument("--scope", action="append", dest="scopes")
    p.add_argument("--expires", type=float, default=30, help="days, at most 30")

    p = cmd("invite", "print a one-time, password-sealed invitation for a user")
    p.add_argument("--user", required=True)
    p.add_argument("--scope", action="append", dest="scopes")
    p.add_argument("--expires", type=float, default=7, help="days, at most 30")
    p.add_argument("--url", help="runner address for the invitee (default: public_url)")
    p.add_argument("--dataset", action="append", default=[], dest="datasets",
                   help="grant this dataset to the user with the invitation (repeatable)")

    p = cmd("grant", "give a user access to one dataset (packages, an epsilon budget, expiry)")
    p.add_argument("user")
    p.add_argument("dataset")
    p.add_argument("--package", action="append", dest="packages", help="package or "
                   "package.step the user may run (repeatable; default: what the policy allows)")
    p.add_argument("--epsilon", type=float, help="the user's own total epsilon on the dataset "
                   "(default: the policy's epsilon_budget)")
    p.add_argument("--expires", type=float, help="days until the grant lapses (default never)")
    p.add_argument("--note", default="")

    p = cmd("revoke", "revoke a grant (by id), or every grant of --user on --dataset")
    p.add_argument("grant_id", nargs="?")
    p.add_argument("--user")
    p.add_argument("--dataset")

    p = cmd("grants", "list grants")
    p.add_argument("--user")
    p.add_argument("--dataset")
    p.add_argument("--all", action="store_true", help="also revoked and expired ones")
    p.add_argument("--json", action="store_true")

    p = cmd("requests", "list access requests, or approve / deny one")
    p.add_argument("action", nargs="?", choices=["list", "show", "approve", "deny"],
                   default="list")
    p.add_argument("request_id", nargs="?")
    p.add_argument("--status", choices=["pending", "approved", "denied", "withdrawn"],
                   help="list only these (default: pending)")
    p.add_argument("--all", action="store_true", help="list every request")
    p.add_argument("--package", action="append", dest="packages",
                   help="approve: grant these packages instead of those asked for (repeatable)")
    p.add_argument("--epsilon", type=float, help="approve: grant this budget instead")
    p.add_argument("--expires", type=float, help="approve: days until the grant lapses")
    p.add_argument("--note", default="", help="a word for the requester")
    p.add_argument("--as", dest="decided_by", default="custodian",
                   help="who decides, as written in the request (default 'custodian')")
    p.add_argument("--json", action="store_true")

    p = cmd("budget", "epsilon spent per principal and dataset")
    p.add_argument("--principal")

    p = cmd("audit", "read the audit log (newest first)")
    p.add_argument("--principal")
    p.add_argument("--dataset")
    p.add_argument("--outcome", choices=["ok", "denied", "error"])
    p.add_argument("--since", help="ISO time")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")

    from jupyter_fed.runner.code_cli import add_code_command, run_code_command

    add_code_command(cmd)
    _COMMANDS["code"] = run_code_command


def _policy_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-package", action="append", dest="allowed_packages",
                   help="packages allowed on this dataset (repeatable; default all)")
    p.add_argument("--min-rows", type=int, help="fewest rows behind any contribution")
    p.add_argument("--min-count", type=int, help="small-count threshold k (default 10)")
    p.add_argument("--epsilon-budget", type=float, help="total epsilon per principal (default 10)")
    p.add_argument("--require-dp", action="store_true", default=None,
                   help="only differentially private steps may read this dataset")
    p.add_argument("--exact-only", action="store_true", default=None,
                   help="refuse statistics queries with a row filter (otherwise answered with DP)")
    p.add_argument("--release-shap-details", action="store_true", default=None,
                   help="let vertical feature importance release per-row SHAP values of this "
                   "dataset's columns (default: only mean |SHAP| per column leaves)")
    p.add_argument("--delta-per-step", type=float, help="largest delta one step may spend "
                   "(default 1/n², never above 1e-5)")
    p.add_argument("--delta-budget", type=float, help="total delta per principal (default 100 "
                   "steps' worth)")
    p.add_argument("--evaluation-epsilon", type=float, help="epsilon charged for a model "
                   "evaluation beyond one per training round (0 refuses them; default 1)")
    p.add_argument("--max-exact-evaluations", type=int, help="exact model evaluations (one "
                   "per training round) each user may have on the dataset's file over all "
                   "sessions; beyond, they are charged --evaluation-epsilon (default 2000)")
    p.add_argument("--public", action="store_true", default=None,
                   help="every token of this runner may see and use the dataset (default: only "
                   "users it is granted to, see `runner grant`)")
    p.add_argument("--private", action="store_false", dest="public",
                   help="only users it is granted to (undoes --public)")


def _policy_changes(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("allowed_packages", "min_rows", "min_count", "epsilon_budget", "require_dp",
            "exact_only", "release_shap_details", "delta_per_step", "delta_budget",
            "evaluation_epsilon", "max_exact_evaluations", "public")
    return {k: getattr(args, k) for k in keys if getattr(args, k) is not None}


@contextmanager
def _open(home: Path) -> Iterator[tuple[RunnerSettings, Any]]:
    from jupyter_fed.runner.store import RunnerStore

    settings = RunnerSettings.load(home)
    store = RunnerStore(settings.db_path)
    try:
        yield settings, store
    finally:
        store.close()


def print_rows(rows: list[dict[str, Any]], cols: list[str]) -> None:
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r.get(c, "") if r.get(c) is not None else "").ljust(widths[c])
                        for c in cols))


def run_runner_command(args: argparse.Namespace) -> int:
    home = args.home or default_home()
    if args.runner_cmd == "init":
        from jupyter_fed.runner.process import init_runner, runner_fingerprint

        settings, token = init_runner(home, args.name, args.data_roots, hostnames=args.hostnames,
                                      public_url=args.public_url, max_workers=args.max_workers)
        print(f"runner {settings.name!r} created in {settings.home}")
        print(f"certificate fingerprint: {runner_fingerprint(settings.home)}")
        print("admin token (shown once, store it safely):")
        print(token)
        return 0
    if args.runner_cmd == "serve":
        from jupyter_fed.runner.process import serve

        serve(home, args.host, args.port, args.ready_file, insecure_http=args.insecure_http)
        return 0
    with _open(home) as (settings, store):
        return _COMMANDS[args.runner_cmd](args, settings, store)


def _register(args: argparse.Namespace, settings: RunnerSettings, store: Any) -> int:
    from jupyter_fed.runner.policy import DatasetPolicy
    from jupyter_fed.runner.registry import parse_bounds, register_dataset
    from jupyter_fed.runner.storage import is_uri
    from jupyter_fed.wire import DatasetRegistration

    policy = DatasetPolicy(**_policy_changes(args))
    info = register_dataset(settings, store, DatasetRegistration(
        name=args.name, path=args.path if is_uri(args.path) else str(Path(args.path).absolute()),
        description=args.description,
        tags=args.tags, id_columns=args.id_columns,
        bounds=parse_bounds(args.bounds, args.bounds_file), view=args.view), policy)
    print(f"registered {info.name!r}: {info.num_rows} rows, {info.num_columns} columns")
    return 0


def _datasets(args: argparse.Namespace, settings: RunnerSettings, store: Any) -> int:
    rows = store.list_datasets()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_rows([{**d, "tags": ",".join(d["tags"])} for d in rows],
                    ["name", "num_rows", "num_columns", "tags", "description"])
    return 0


def _policy(args: argparse.Namespace, settings: RunnerSettings, store: Any) -> int:
    from jupyter_fed.errors import NotFoundError
    from jupyter_fed.runner.policy import DatasetPolicy

    current = store.get_policy(args.name)
    if current is None:
        raise NotFoundError(f"no dataset named {args.name!r}", "see `jupyter-fed runner datasets`")
    policy = DatasetPolicy(**{**current, **_policy_changes(args)})
    store.set_policy(args.name, policy.model_dump())
    print(json.dumps(policy.model_dump(), indent=2))
    return 0


def _user(args: argparse.Namespace, settings: RunnerSettings, store: Any) -> int:
    from jupyter_fed.runner.accounts import Accounts

    accounts = Accounts(store)
    if args.action == "list":
        print_rows(accounts.users(), ["name", "role", "created_at"])
    elif args.action == "create":
        print(json.dumps(accounts.create_user(args.name, args.role)))
    else:
        accounts.delete_user(args.name)
        from jupyter_fed.runner.grants import Grants

        Grants(store).revoke_all(principal=args.name)
        print(f"deleted {args.name!r} and revoked their tokens")
    return 0


def _token(args: argparse.Namespace, settings: RunnerSettings, store: Any) -> int:
    from jupyter_fed.runner.accounts import Accounts

    accounts = Accounts(store)
    if args.action == "list":
        print_rows(accounts.tokens(args.target), ["token_id", "user", "scopes", "expires_at",
                                                   "active", "description"])
    elif args.action == "create":
        token_id, secret = accounts.create_token(args.target, args.scopes, args.expires)
        print(f"token {token_id} for {args.target!r} (shown once):")
        print(secret)
    else:
        accounts.revoke_token(args.target)
        print(f"revoked {args.target}")
    return 0


def _invite(args: argparse.Namespace, settings: RunnerSettings, store: Any) -> int:
    from jupyter_fed.runner.accounts import Accounts
    from jupyter_fed.runner.invitations import make_invitation
    from jupyter_fed.runner.schemas import NewInvitation

    password = os.environ.get("JUPYTER_FED_INVITE_PASSWORD") or getpass.getpass(
        "password for the invitation (send it separately): ")
    inv = make_invitation(settings, Accounts(store), NewInvitation(
        user=args.user, scopes=args.scopes, expires_days=args.expires, password=password,
        url=args.url, datasets=args.datasets))
    print(f"invitation {inv['invitation']} for {inv['user']!r}, scopes {','.join(inv['scopes'])}, "
          f"expires {inv['expires_at']}; usable once:")
    print(inv["blob"])
    return 0


def _budget(args: argparse.Namespace, settings: RunnerSettings, store: Any) -> int:
    from jupyter_fed.runner.policy import Ledger

    print_rows(Ledger(store).spending(args.principal), ["principal", "dataset", "spent",
                                                         "delta_spent", "updated_at"])
    return 0


def _audit(args: argparse.Namespace, settings: RunnerSettings, store: Any) -> int:
    from jupyter_fed.runner.audit import AuditLog

    rows = AuditLog(store).query(principal=args.principal, dataset=args.dataset,
                                 outcome=args.outcome, since=args.since, limit=args.limit)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_rows(rows, ["at", "principal", "method", "path", "dataset", "package", "step",
                           "status", "outcome", "bytes_out"])
    return 0


def _data_root(args: argparse.Namespace, settings: RunnerSettings, store: Any) -> int:
    """Data roots live in runner.json; a running runner reads them at its next start."""
    from jupyter_fed.errors import ConfigError, NotFoundError
    from jupyter_fed.runner.storage import is_uri

    roots = list(settings.data_roots)
    if args.action == "list":
        for root in [*roots, *settings.data_uri_prefixes]:
            print(root)
        return 0
    if args.path is None:
        raise ConfigError(f"`data-root {args.action}` needs a folder",
                          f"jupyter-fed runner data-root {args.action} /path/to/folder")
    if is_uri(args.path):
        return _uri_prefix(args, settings, store)
    folder = Path(args.path).expanduser().absolute()
    if args.action == "add":
        if not folder.is_dir():
            raise NotFoundError(f"{folder} is not a folder", "create it first, or check the path")
        if folder.resolve() in {r.resolve() for r in roots}:
            print(f"{folder} is already a data root")
            return 0
        settings.data_roots = [*roots, folder]
    else:
        kept = [r for r in roots if r.resolve() != folder.resolve()]
        if len(kept) == len(roots):
            raise NotFoundError(f"{folder} is not a data root",
                                "see `jupyter-fed runner data-root list`")
        in_use = [name for name, path in store.dataset_paths() if not is_uri(path)
                  and Path(path).resolve().is_relative_to(folder.resolve())]
        if in_use:
            raise ConfigError(f"datasets {', '.join(sorted(in_use))} lie under {folder}",
                              "remove those datasets first")
        settings.data_roots = kept
    return _saved(settings)


def _saved(settings: RunnerSettings) -> int:
    settings.save()
    shown = [str(r) for r in settings.data_roots] + settings.data_uri_prefixes
    print(f"data roots: {', '.join(shown) or '(none)'} (a running runner uses them after a "
          "restart)")
    return 0


def _grant(args: argparse.Namespace, settings: RunnerSettings, store: Any) -> int:
    from jupyter_fed.runner.accounts import Accounts
    from jupyter_fed.runner.grants import Grants

    Accounts(store)  # the users table a grant refers to
    g = Grants(store).grant(args.user, args.dataset, packages=args.packages,
                            epsilon_budget=args.epsilon, expires_days=args.expires,
                            granted_by="custodian", note=args.note)
    what = ", ".join(g["packages"]) if g["packages"] else "what the policy allows"
    eps = f"epsilon {g['epsilon_budget']:g}" if g["epsilon_budget"] is not None else \
        "the policy's epsilon budget"
    print(f"{g['grant_id']}: {args.user!r} may use {args.dataset!r} ({what}; {eps}"
          f"{'; until ' + g['expires_at'] if g['expires_at'] else ''})")
    _audit_cli(store, f"runner grant {args.user} {args.dataset}", args.dataset, "grant")
    return 0


def _audit_cli(store: Any, command: str, dataset: str | None, action: str) -> None:
    """A custodian's decision typed on the runner's machine goes in the audit log too."""
    from jupyter_fed.runner.audit import AuditLog

    AuditLog(store).record(principal="custodian", method="CLI", path=command, dataset=dataset,
                           step=action, status=200)


def _revoke(args: argparse.Namespace, settings: RunnerSettings, store: Any) -> int:
    from jupyter_fed.errors import ConfigError, NotFoundError
    from jupyter_fed.runner.grants import Grants

    grants = Grants(store)
    if args.grant_id:
        grants.revoke(args.grant_id)
        print(f"revoked {args.grant_id}")
        _audit_cli(store, f"runner revoke {args.grant_id}", None, "revoke")
        return 0
    if not (args.user and args.dataset):
        raise ConfigError("name a grant id, or both --user and --dataset",
                          "see `jupyter-fed runner grants`")
    if not grants.revoke_all(principal=args.user, dataset=args.dataset):
        raise NotFoundError(f"{args.user!r} has no active grant on {args.dataset!r}", "")
    print(f"revoked {args.user!r}'s access to {args.dataset!r}")
    _audit_cli(store, f"runner revoke --user {args.user}", args.dataset, "revoke")
    return 0


def _grants(args: argparse.Namespace, settings: RunnerSettings, store: Any) -> int:
    from jupyter_fed.runner.grants import Grants

    rows = Grants(store).grants(args.user, args.dataset, include_inactive=args.all)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_rows([{**g, "packages": ",".join(g["packages"] or ["(policy)"])} for g in rows],
                    ["grant_id", "user", "dataset", "packages", "epsilon_budget", "expires_at",
                     "active"])
    return 0


def _requests(args: argparse.Namespace, settings: RunnerSettings, store: Any) -> int:
    from jupyter_fed.errors import ConfigError
    from jupyter_fed.runner.accounts import Accounts
    from jupyter_fed.runner.grants import Grants

    Accounts(store)
    grants = Grants(store)
    if args.action == "list":
        rows = grants.requests(status=None if args.all else args.status or "pending")
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            print_rows([{**r, "packages": ",".join(r["packages"] or ["(any)"])} for r in rows],
                        ["request_id", "user", "dataset", "packages", "epsilon", "status",
                         "created_at", "reason"])
        return 0
    if not args.request_id:
        raise ConfigError(f"`requests {args.action}` needs a request id",
                          "see `jupyter-fed runner requests`")
    if args.action == "show":
        print(json.dumps(grants.request(args.request_id), indent=2))
        return 0
    if args.action == "approve":
        r = grants.approve(args.request_id, args.decided_by,
                           packages=args.packages if args.packages is not None else ...,
                           epsilon=args.epsilon if args.epsilon is not None else ...,
                           expires_days=args.expires, note=args.note)
        print(f"approved {r['request_id']}: {r['user']!r} may use {r['dataset']!r} "
              f"({r['grant_id']})")
    else:
        r = grants.deny(args.request_id, args.decided_by, args.note)
        print(f"denied {r['request_id']} of {r['user']!r} on {r['dataset']!r}")
    _audit_cli(store, f"runner requests {args.action} {args.request_id}", r["dataset"],
               args.action)
    return 0


def _uri_prefix(args: argparse.Namespace, settings: RunnerSettings, store: Any) -> int:
    """``data-root add|remove s3://bucket/prefix/``: the allow-list of object-storage prefixes."""
    from jupyter_fed.errors import ConfigError, NotFoundError
    from jupyter_fed.runner.storage import normalize_prefix

    prefix = normalize_prefix(args.path)
    prefixes = list(settings.data_uri_prefixes)
    if args.action == "add":
        if prefix in prefixes:
            print(f"{prefix} is already allowed")
            return 0
        settings.data_uri_prefixes = [*prefixes, prefix]
        return _saved(settings)
    if prefix not in prefixes:
        raise NotFoundError(f"{prefix} is not an allowed prefix",
                            "see `jupyter-fed runner data-root list`")
    in_use = [name for name, path in store.dataset_paths() if path.startswith(prefix)]
    if in_use:
        raise ConfigError(f"datasets {', '.join(sorted(in_use))} lie under {prefix}",
                          "remove those datasets first")
    settings.data_uri_prefixes = [p for p in prefixes if p != prefix]
    return _saved(settings)


_COMMANDS = {"data-root": _data_root, "register": _register, "datasets": _datasets,
             "policy": _policy, "user": _user, "token": _token, "invite": _invite,
             "budget": _budget, "audit": _audit, "grant": _grant, "revoke": _revoke,
             "grants": _grants, "requests": _requests}
