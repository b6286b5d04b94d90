"""``%%federate <package> --simulate N``: the cell's session on simulated clients.

The same body and options as a real cell; instead of ``--datasets`` on runners, ``--dataset``
names the rows to partition — a DataFrame in the notebook's namespace, or a parquet/csv path —
and ``--partition`` how (``iid``, ``dirichlet:0.5``, ``column:site``). Moving the cell to real
runners is replacing ``--simulate N --partition … --dataset …`` with ``--datasets a,b,…``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from jupyter_fed.magics._errors import CellConfigError, fed_errors
from jupyter_fed.magics._fed import unquote

if TYPE_CHECKING:
    from jupyter_fed.client import Client, Session
    from jupyter_fed.magics._spec import SessionSpec

__all__ = ["launch_simulation"]


def _rows(ref: str | None, user_ns: Mapping[str, Any], option: str) -> Any:
    """A notebook variable of that name, else the text as a path."""
    if ref is None:
        return None
    ref = unquote(ref) or ""
    if ref.isidentifier() and ref in user_ns:
        return user_ns[ref]
    from pathlib import Path

    path = Path(ref).expanduser()
    if not path.is_file():
        raise CellConfigError(f"{option} {ref!r} is neither a variable of this notebook nor a "
                              "file", "name a DataFrame variable, or a parquet/csv path")
    return path


def launch_simulation(client: Client, spec: SessionSpec, args: Any, user_ns: Mapping[str, Any],
                      on_created: Callable[[Session], None]) -> Session:
    """Start the cell's session on ``args.simulate`` simulated clients; returns it running."""
    if args.datasets:
        raise CellConfigError("--datasets names runners' datasets; a simulation partitions "
                              "--dataset", "drop --datasets, or drop --simulate to use runners")
    dataset = _rows(args.dataset, user_ns, "--dataset")
    if dataset is None:
        raise CellConfigError("--simulate needs --dataset", "name a DataFrame variable or a "
                              "parquet/csv file, e.g. --dataset frame")
    test = _rows(args.test_datasets, user_ns, "--test-datasets")
    data = spec.data_config
    if "predictors" not in data and isinstance(data.get("target"), str):
        columns = [str(c) for c in (dataset.columns if hasattr(dataset, "columns") else
                                    _columns(dataset))]
        data["predictors"] = [c for c in columns if c != data["target"]]
        print(f"note: predictors: the {len(data['predictors'])} columns except the target")
    spec.fill_defaults(None)
    with fed_errors("the simulation was refused", CellConfigError):
        session = client.simulate(
            spec.package, spec.model_config, spec.data_config, dataset=dataset, test=test,
            partitions=unquote(args.partition) or "iid", num_clients=args.simulate,
            num_rounds=spec.rounds, engine=unquote(args.engine) or "local",
            seed=int(spec.model_config.get("seed", 0) or 0),
            name=spec.name or f"simulated {spec.package}", description=spec.description,
            min_num_clients=spec.min_clients, round_timeout=spec.round_timeout)
    on_created(session)
    return session


def _columns(path: Any) -> list[str]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if str(path).lower().endswith(".csv"):
        return list(pacsv.read_csv(path).column_names)
    return list(pq.read_schema(path).names)
