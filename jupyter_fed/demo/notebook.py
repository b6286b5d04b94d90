"""Demo runners for a notebook: synthetic silos in a temporary folder, stopped without leaks.

A notebook cell that starts processes has no ``with`` block around the rest of the notebook, so
:class:`DemoRunners` stops its runners when asked (``stop()`` is idempotent), when used as a
context manager, and at interpreter exit (a restarted or shut-down kernel), whichever comes first.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

from jupyter_fed.demo.data import (
    CONSUMER_FEATURES,
    FEATURES,
    PROVIDER_FEATURES,
    TARGET,
    write_evaluation,
    write_silos,
    write_vertical,
)

__all__ = ["DemoRunners", "EvaluationDemo", "start_demo_runners", "start_evaluation_demo",
           "start_vertical_demo"]


class DemoRunners:
    """Runners ``silo0``, ``silo1``… on loopback, each with its training silo and the test set.

    Parameters
    ----------
    rows
        Training rows per silo.
    clients
        Number of runners (one silo each).
    test_rows
        Rows of ``test.parquet`` (default: a fifth of ``rows``, at least 1000).
    seed
        Seed of the synthetic data.
    root
        Folder for data and runner homes; a new temporary folder (removed by ``stop()``) if omitted.
    vertical
        Vertically split silos instead (the same people, different columns): runners
        ``party0``, ``party1``… holding ``party{p}_train`` and ``party{p}_test``, registered with
        their ``patient_id`` column for record linkage; the last party holds the target ``y``.
    overlap
        With ``vertical``, the share of each party's rows that every party holds.
    """

    features = FEATURES
    target = TARGET

    def __init__(self, rows: int = 2000, clients: int = 2, test_rows: int | None = None,
                 seed: int = 7, root: str | Path | None = None, vertical: bool = False,
                 overlap: float = 0.9) -> None:
        self.rows, self.clients, self.test_rows, self.seed = rows, clients, test_rows, seed
        self.vertical, self.overlap = vertical, overlap
        self._owns_root = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="jupyter-fed-demo-"))
        self.data_dir = self.root / "data"
        self.paths: dict[str, Path] = {}
        self._federation: Any = None
        self._clients: list[Any] = []
        self.stopped = False

    def start(self, timeout: float = 60.0) -> DemoRunners:
        """Write the silos and start the runner processes (waits until each answers)."""
        from jupyter_fed.demo.federation import LocalFederation

        if self._federation is not None:
            return self
        silos = self._write_silos()
        atexit.register(self.stop)  # before starting: a half-started federation is cleaned too
        self._federation = LocalFederation(self.root / "runners", silos, self.data_dir)
        try:
            self._federation.start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _write_silos(self) -> dict[str, dict[str, Any]]:
        """Write the data; return runner name → {dataset name: its path or registration}."""
        silos: dict[str, dict[str, Any]]
        if self.vertical:
            parties = write_vertical(self.data_dir, rows=self.rows, parties=self.clients,
                                     overlap=self.overlap, test_rows=self.test_rows,
                                     seed=self.seed)
            self.paths = {f"{party}_{role}": path for party, files in parties.items()
                          for role, path in files.items()}
            silos = {party: {f"{party}_{role}": {"path": path, "id_columns": ["patient_id"]}
                             for role, path in files.items()} for party, files in parties.items()}
        else:
            self.paths = write_silos(self.data_dir, rows=self.rows, clients=self.clients,
                                     test_rows=self.test_rows, seed=self.seed)
            silos = {f"silo{i}": {f"train_silo{i}": self.paths[f"train_silo{i}"],
                                  "test": self.paths["test"]} for i in range(self.clients)}
        return silos

    @property
    def runners(self) -> list[dict[str, str]]:
        """``[{"name", "url", "token"}]`` for ``jupyter_fed.connect(runners=...)``."""
        return self._federation.runners if self._federation is not None else []

    @property
    def state_dir(self) -> Path:
        """A coordinator folder of its own, so the demo leaves the user's sessions alone."""
        return self.root / "coordinator"

    def connect(self) -> Any:
        """An embedded-coordinator client connected to every demo runner (closed by ``stop()``)."""
        import jupyter_fed

        client = jupyter_fed.connect(embedded=True, state_dir=self.state_dir, runners=self.runners)
        self._clients.append(client)
        return client

    def stop(self) -> None:
        """Close clients from :meth:`connect`, stop the runners, remove the temporary folder.

        Safe to call more than once; also runs at interpreter exit.
        """
        if self.stopped:
            return
        self.stopped = True
        atexit.unregister(self.stop)
        for client in self._clients:  # before the runners go, so no session is left polling them
            try:
                client.close()
            except Exception:
                pass
        try:
            if self._federation is not None:
                self._federation.stop()
        finally:
            if self._owns_root:
                shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DemoRunners:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self.stopped else ", ".join(
            f"{r['name']} at {r['url']}" for r in self.runners) or "not started"
        kind = "vertical part(s)" if self.vertical else "silo(s)"
        return f"<DemoRunners {self.clients} {kind} × {self.rows:,} rows: {state}>"


def start_demo_runners(rows: int = 2000, clients: int = 2, **kwargs: Any) -> DemoRunners:
    """Start demo runners for a notebook; call ``.stop()`` when done (it also runs at exit)."""
    return DemoRunners(rows=rows, clients=clients, **kwargs).start()


def start_vertical_demo(rows: int = 2000, parties: int = 2, **kwargs: Any) -> DemoRunners:
    """Start runners holding vertically split demo data (``party0``, ``party1``…, the same people
    with different columns, ids in ``patient_id``); ``.stop()`` when done (also runs at exit)."""
    return DemoRunners(rows=rows, clients=parties, vertical=True, **kwargs).start()


class EvaluationDemo(DemoRunners):
    """Two runners for the data-provider evaluation template: ``consumer`` and ``provider``.

    ``consumer`` holds ``consumer_train`` / ``consumer_test`` (ids in ``customer_id``, its
    columns ``c0…c2`` and the label ``y``); ``provider`` holds ``provider_train`` /
    ``provider_test`` (ids in ``person_id``, columns ``p0…p4``). See
    :func:`jupyter_fed.demo.data.write_evaluation`.

    Parameters
    ----------
    provider
        ``"signal"``: the label depends on some of the provider's columns; ``"noise"``: the
        provider's columns are independent of everything.
    rows
        Training rows of each party (test rows: a third of that, at least 300).
    overlap
        Share of the consumer's people the provider also holds.
    seed
        Seed of the synthetic data.
    root
        As for :class:`DemoRunners`.
    """

    consumer_features = CONSUMER_FEATURES
    provider_features = PROVIDER_FEATURES

    def __init__(self, provider: str = "signal", rows: int = 2000, overlap: float = 0.7,
                 seed: int = 5, root: str | Path | None = None) -> None:
        super().__init__(rows=rows, clients=2, seed=seed, root=root, vertical=True,
                         overlap=overlap)
        self.provider = provider

    def _write_silos(self) -> dict[str, dict[str, Any]]:
        parties = write_evaluation(self.data_dir, provider=self.provider, rows=self.rows,
                                   overlap=self.overlap, seed=self.seed)
        ids = {"consumer": ["customer_id"], "provider": ["person_id"]}
        self.paths = {f"{party}_{role}": path for party, files in parties.items()
                      for role, path in files.items()}
        return {party: {f"{party}_{role}": {"path": path, "id_columns": ids[party]}
                        for role, path in files.items()} for party, files in parties.items()}

    def __repr__(self) -> str:
        return super().__repr__().replace("<DemoRunners", f"<EvaluationDemo ({self.provider} "
                                          "provider)", 1)


def start_evaluation_demo(provider: str = "signal", rows: int = 2000, **kwargs: Any
                          ) -> EvaluationDemo:
    """Start a ``consumer`` and a ``provider`` runner for the evaluation template; ``provider``
    is ``"signal"`` or ``"noise"`` (see :class:`EvaluationDemo`). ``.stop()`` when done (it also
    runs at exit)."""
    return EvaluationDemo(provider=provider, rows=rows, **kwargs).start()
