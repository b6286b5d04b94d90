"""The model builder's entry point in the kernel."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_fed.client.session import Session
from jupyter_fed.client.taskgroup import TaskBuilder
from jupyter_fed.errors import ConfigError, FedError

if TYPE_CHECKING:
    import pandas as pd

    from jupyter_fed.client._backend import Backend
    from jupyter_fed.client.access import AccessRequest
    from jupyter_fed.client.auth import RunnerAuth
    from jupyter_fed.client.custom import CodeRequest


class Client:
    """Runners, the dataset catalog and sessions, through one coordinator.

    Create it with :func:`jupyter_fed.connect`. Names follow the reference SDK
    (``create_fl_session``, ``SessionTaskGroup``, ``metrics().as_dict()``) so its users feel at home.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend: Backend = backend

    # runners --------------------------------------------------------------------------------
    def add_runner(self, name: str, url: str, token: str, fingerprint: str | None = None
                   ) -> dict[str, Any]:
        """Connect a runner: checks its pinned certificate (https), that it answers, and the token.

        ``fingerprint`` is the ``sha256:…`` the runner printed at start; required for https.
        """
        return self._backend.add_runner(name, url, token, fingerprint)

    def add_runners(self, runners: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Connect several runners at once: ``[{"name", "url", "token", "fingerprint"}]``."""
        return self._backend.add_runners([dict(r) for r in runners])

    def join(self, blob: str, password: str, name: str | None = None) -> dict[str, Any]:
        """Connect a runner from a custodian's invitation (usable once; token stays server-side)."""
        return self._backend.join_invitation(blob, password, name)

    def auth(self, runner: str) -> RunnerAuth:
        """User and token administration at ``runner`` (needs an admin token there)."""
        from jupyter_fed.client.auth import RunnerAuth

        return RunnerAuth(self._backend, runner)

    def submit_code(self, runner: str, source: str | Path | Any, *, name: str | None = None,
                    description: str = "") -> CodeRequest:
        """Submit your own package (a folder with ``local.py`` and ``plan.py``, optionally
        ``config.py``, ``model.py`` and ``package.json``) to ``runner`` as a code request.

        Parameters
        ----------
        runner
            The connected runner whose custodian reviews the code.
        source
            The package's folder; or a ``.py`` file defining ``Model(nn.Module)`` and
            ``load(dataset, data_config) -> (x, y)``, trained by FedAvg with jupyter-fed's torch
            template (``model_config``: ``lr``, ``epochs``, ``batch_size``, ``seed``,
            ``model_args``; datasets as ``tb.hfl(train)``); or a
            :class:`~jupyter_fed.packages.custom.CodeBundle`.
        name
            Its name (default: the folder's name).
        description
            What the code does, for the custodian.

        Returns
        -------
        CodeRequest
            ``id``, ``digest``, ``status`` (``pending`` until the custodian decides; call
            ``refresh()``), and ``package``: the ``package_name`` of sessions that run it, once
            approved for the datasets they use. Changing one byte of the code makes another
            package, which needs its own approval.
        """
        from jupyter_fed.client.custom import submit_code

        return submit_code(self._backend, runner, source, name=name, description=description)

    def code_requests(self, runner: str) -> list[CodeRequest]:
        """Your code requests at ``runner`` (a custodian's token sees everyone's)."""
        from jupyter_fed.client.custom import CodeRequest

        return [CodeRequest.from_row(r, runner, self._backend)
                for r in self._backend.runner_admin(runner, "GET", "/v1/code")]

    def remove_runner(self, name: str) -> None:
        self._backend.remove_runner(name)

    # access: grants and requests --------------------------------------------------------------
    def request_access(self, runner: str, dataset: str, packages: list[str] | None = None,
                       epsilon: float | None = None, reason: str = "") -> AccessRequest:
        """Ask ``runner``'s custodian for ``dataset`` (or for more of it: packages, epsilon).

        The custodian approves (possibly with changes) or denies it; ``.wait()`` blocks until
        then. A request is accepted for any name: it never tells whether the dataset exists.
        """
        from jupyter_fed.client.access import AccessRequest

        info = self._backend.runner_admin(runner, "POST", "/v1/requests", {
            "dataset": dataset, "packages": packages, "epsilon": epsilon, "reason": reason})
        return AccessRequest(runner, info, self._backend)

    def my_requests(self, runner: str | None = None) -> pd.DataFrame:
        """Your access requests and their status, on one runner or on all connected runners."""
        return self._per_runner("/v1/requests/self", runner,
                                ["runner", "request_id", "dataset", "packages", "epsilon",
                                 "status", "note", "created_at", "decided_at", "reason"])

    def my_grants(self, runner: str | None = None) -> pd.DataFrame:
        """The datasets granted to you, with the packages and epsilon budget each allows."""
        return self._per_runner("/v1/grants/self", runner,
                                ["runner", "dataset", "packages", "epsilon_budget", "expires_at",
                                 "grant_id"])

    def _per_runner(self, path: str, runner: str | None, cols: list[str]) -> pd.DataFrame:
        import warnings

        import pandas as pd

        names = [runner] if runner else [r["name"] for r in self._backend.runners()]
        rows: list[dict[str, Any]] = []
        for name in names:
            try:
                rows += [{"runner": name, **r}
                         for r in self._backend.runner_admin(name, "GET", path)]
            except FedError as exc:
                if runner:
                    raise
                warnings.warn(f"runner {name}: {exc.message}", stacklevel=3)
        return pd.DataFrame(rows, columns=cols)

    def runners(self) -> pd.DataFrame:
        """Connected runners with health, latency in ms and number of datasets."""
        import pandas as pd

        cols = ["name", "url", "status", "latency_ms", "datasets", "version", "error"]
        return pd.DataFrame(self._backend.runners(), columns=cols)

    # catalog --------------------------------------------------------------------------------
    def datasets(self, tag: str | None = None) -> pd.DataFrame:
        """The catalog across runners: names, descriptions, tags, schema and row counts.

        Unreachable runners are reported as a warning, not an error, so one silo being down does
        not hide the others.
        """
        import warnings

        import pandas as pd

        cat = self._backend.catalog()
        for err in cat["errors"]:
            warnings.warn(f"runner {err['runner']}: {err['message']}", stacklevel=2)
        rows = [{"runner": d["runner"], "name": d["name"], "description": d["description"],
                 "tags": d["tags"], "num_rows": d["num_rows"], "num_columns": d["num_columns"],
                 "columns": [c["name"] for c in d["columns"]], "format": d["format"],
                 "registered_at": d["registered_at"]} for d in cat["datasets"]
                if tag is None or tag in d["tags"]]
        return pd.DataFrame(rows, columns=["runner", "name", "description", "tags", "num_rows",
                                           "num_columns", "columns", "format", "registered_at"])

    def packages(self) -> pd.DataFrame:
        """The packages the coordinator runs (``package_name`` values), with their dataset roles
        and whether they run rounds or one step."""
        import pandas as pd

        return pd.DataFrame(self._backend.packages(),
                            columns=["name", "aliases", "description", "roles", "rounds"])

    # sessions -------------------------------------------------------------------------------
    def create_fl_session(self, name: str, description: str = "", min_num_clients: int = 2,
                          num_rounds: int = 10, package_name: str = "ffnet",
                          model_config: dict[str, Any] | None = None,
                          data_config: dict[str, Any] | None = None, *,
                          round_timeout: float | None = None,
                          min_completion_rate: float | None = None,
                          accept_failures: bool | None = None,
                          heartbeat_timeout: float | None = None,
                          max_retries: int | None = None,
                          ready_timeout: float | None = None) -> Session:
        """Create a federated-learning session (not yet started).

        Parameters
        ----------
        name, description
            Shown in listings.
        min_num_clients
            Clients that must join before training starts, and that must answer every round.
        num_rounds
            Federated rounds (each: one local training step per client, then aggregation).
        package_name
            Algorithm, e.g. ``"ffnet"`` (alias ``"iai_ffnet"``).
        model_config, data_config
            The package's configuration, validated now: errors name each bad field.
        round_timeout
            Seconds a round may take before unresponsive clients are dropped (default 3600).
        min_completion_rate
            Share of a round's clients that must answer (default 0: ``min_num_clients`` rules).
        accept_failures
            Continue without failed clients when enough remain (default ``True``).
        heartbeat_timeout
            Seconds a runner may go without answering before it is dropped (default 30); a slow
            runner that keeps answering is never dropped before ``round_timeout``.
        max_retries
            Retries of a client's step after a connection failure or runner restart (default 2).
        ready_timeout
            Seconds to wait, once the clients joined, for their runners to report ready (a warm
            worker; default 300) — the first round then does not pay for runners warming up at
            once, and its ``round_timeout`` counts from then. The session starts anyway after it.
        """
        policy = {k: v for k, v in {"round_timeout": round_timeout,
                                     "ready_timeout": ready_timeout,
                                     "min_completion_rate": min_completion_rate,
                                     "accept_failures": accept_failures,
                                     "heartbeat_timeout": heartbeat_timeout,
                                     "max_retries": max_retries}.items() if v is not None}
        info = self._backend.create_session(name=name, description=description,
                                  package_name=package_name, min_num_clients=min_num_clients,
                                  num_rounds=num_rounds, model_config=model_config or {},
                                  data_config=data_config or {}, policy=policy)
        return Session(self, info)

    def simulate(self, package_name: str, model_config: dict[str, Any] | None = None,
                 data_config: dict[str, Any] | None = None, *, dataset: Any,
                 partitions: Any = "iid", num_clients: int | None = None, num_rounds: int = 10,
                 engine: Any = "local", engine_options: dict[str, Any] | None = None,
                 seed: int = 0, label: str | None = None, test: Any = None,
                 policy: dict[str, Any] | None = None, name: str | None = None,
                 description: str = "", min_num_clients: int | None = None,
                 round_timeout: float | None = None, wait: bool = False) -> Session:
        """Run a package on simulated clients: partitions of one dataset, before real runners.

        The same package code and plan as a real session — each virtual client runs the
        package's ``local.py`` steps on its partition, with a runner's checks (policy, minimum
        rows, privacy budget on a simulated ledger) — through this coordinator's engine, round
        policy, strategy and metrics. The session is an ordinary :class:`Session` marked as a
        simulation (``info()["simulation"]``); moving to real runners changes only where the
        data is: the same ``model_config`` and ``data_config`` go to ``create_fl_session``.

        Parameters
        ----------
        package_name
            The algorithm, e.g. ``"ffnet"``.
        model_config, data_config
            The package's configuration, as for a real session.
        dataset
            The rows to partition: a pandas DataFrame, a pyarrow Table, or a parquet/csv path.
        partitions
            ``"iid"`` (default), ``"dirichlet:<alpha>"`` (label skew; smaller alpha, more skew),
            ``"column:<name>"`` (one client per value), or explicit lists of row positions
            (see :func:`jupyter_fed.simulation.partition`).
        num_clients
            Virtual clients (for ``column`` partitions: the column's number of values).
        num_rounds
            Federated rounds.
        engine
            Where clients run: ``"local"`` (this process), ``"ray"`` (actors, each hosting many
            clients) or ``"dask"`` (workers), or an engine from ``jupyter_fed.simulation``.
        engine_options
            Options of the engine: ``workers`` (local, dask), ``actors``, ``address``,
            ``num_cpus`` (ray), ``client`` (dask: an existing ``distributed.Client``).
        seed
            Seeds the partitioning (the model's own seed is ``model_config["seed"]``).
        label
            The class column for Dirichlet partitions (default: ``data_config["target"]``).
        test
            A test set every client evaluates on (DataFrame, Table or path); default: each
            client evaluates on its own partition, as a runner without a test set does.
        policy
            The policy of every simulated dataset, as a custodian would set it
            (``epsilon_budget``, ``min_rows``, ``allowed_packages``, …).
        name, description
            Shown in listings (default name ``"simulated <package>"``).
        min_num_clients
            Clients that must answer every round (default: all of them).
        round_timeout
            Seconds a round may take.
        wait
            Block until the session ends (default: return once it runs).

        Returns
        -------
        Session
            ``metrics()``, ``model()``, ``logs()``, ``wait()`` as for any session.

        Examples
        --------
        ::

            s = client.simulate("ffnet", cfg, {"predictors": FEATURES, "target": "y"},
                                dataset=frame, partitions="dirichlet:0.5", num_clients=10,
                                num_rounds=5, engine="ray")
            s.wait(); s.metrics().as_dict()
        """
        info = self._backend.simulate(
            package_name=package_name, model_config=model_config or {},
            data_config=data_config or {}, dataset=dataset, partitions=partitions,
            num_clients=num_clients, num_rounds=num_rounds, engine=engine,
            engine_options=engine_options, seed=seed, label=label, test=test, policy=policy,
            name=name, description=description, min_num_clients=min_num_clients,
            session_policy={"round_timeout": round_timeout} if round_timeout else None)
        session = Session(self, info)
        if wait:
            session.wait()
        return session

    def create_analytics_session(self, package_name: str, name: str, description: str = "",
                                 data_config: dict[str, Any] | None = None,
                                 model_config: dict[str, Any] | None = None,
                                 num_datasets: int | None = None, num_rounds: int = 1,
                                 **policy: Any) -> Session:
        """A one-step analytics session (``eda``, ``stats``): each dataset computes, one merge.

        ``data_config`` maps dataset names to their columns (names, indices, or ``[]`` for all);
        ``num_datasets`` (clients to wait for) defaults to the number of datasets it names.
        ``num_rounds`` serves per-client packages that take one (a vertical session's epochs).
        """
        data_config = dict(data_config or {})
        if package_name.lower() in ("eda_intersect", "iai_eda_intersect"):
            from jupyter_fed.packages.eda_intersect.config import parse_data

            clients = parse_data(data_config).clients  # fails here, naming the field
            self._check_linkage(data_config.get("prl_session_id"))
            n = num_datasets if num_datasets is not None else len(clients)
        else:
            n = num_datasets if num_datasets is not None else max(
                1, len(data_config.get("datasets", data_config)))
        info = self._backend.create_session(name=name, description=description,
                                  package_name=package_name, min_num_clients=n,
                                  num_rounds=num_rounds,
                                  model_config=model_config or {}, data_config=data_config,
                                  policy={k: v for k, v in policy.items() if v is not None})
        session = Session(self, info)
        session.notice = self._privacy_notice(info.get("package", package_name), model_config,
                                              data_config)
        return session

    def _privacy_notice(self, package: str, model_config: dict[str, Any] | None,
                        data_config: dict[str, Any]) -> str:
        """EDA: the epsilon each column gets, said (as a warning) before the session runs."""
        if package not in ("eda", "iai_eda"):
            return ""
        import logging
        import warnings

        from jupyter_fed.packages.eda.config import epsilon_notice

        try:
            notice = epsilon_notice(model_config, data_config,
                                    self._backend.catalog()["datasets"])
        except Exception:  # a notice must never stop a session from being created
            return ""
        if notice:
            logging.getLogger("jupyter_fed.client").info(notice)
            warnings.warn(notice, UserWarning, stacklevel=3)
        return notice

    def create_eda_session(self, name: str, description: str = "",
                           data_config: dict[str, Any] | None = None,
                           num_datasets: int | None = None, *, epsilon: float = 1.0,
                           mechanism: str = "laplace", bins: int = 20,
                           eda_mode: str = "individual", prl_session_id: str | None = None,
                           paired_columns: dict[str, list[str]] | None = None,
                           pair_epsilon: float | None = None, bins2d: int | None = None,
                           categorical: list[str] | None = None, **policy: Any) -> Session:
        """Exploratory analysis: DP histograms and summary statistics per column.

        Parameters
        ----------
        data_config
            Individual mode: ``{dataset_name: [columns]}``; ``[]`` means all columns, as in the
            reference SDK. Intersect mode: ``{client_name: {"columns": [...]}}`` (or
            ``{client_name: [...]}``), the client names of the record linkage; tasks join with
            ``task_builder().eda(dataset, client_name=...)``.
        epsilon
            Privacy budget spent on each dataset (split across its columns); debited from the
            runner's per-dataset ledger before any row is read.
        mechanism
            ``"laplace"`` or ``"gaussian"`` noise.
        bins
            Histogram bins for numeric columns.
        categorical
            Columns to describe by their values (DP partition selection) besides the binary and
            label columns of the registered schemas.
        eda_mode
            ``"individual"`` (each dataset on its own) or ``"intersect"``: each party's columns
            on the rows a record-linkage session linked, and pairs of ``paired_columns``.
        prl_session_id
            Intersect mode: the completed ``prl`` session whose intersection to explore.
        paired_columns
            Intersect mode: ``{client_name: [columns]}``; every two of them form a pair with a
            2D histogram, correlation, group sums (``results.plot_hist(a, b)``,
            ``results.corr(a, b)``, ``a + b``, ``results.groupby(a)[b].mean()``). Pairs across
            parties are computed under homomorphic encryption.
        pair_epsilon
            Intersect mode: epsilon each dataset spends on all pairs together (default 1.0),
            on top of ``epsilon``.
        bins2d
            Intersect mode: bins per numeric column in 2D histograms (default 10).
        """
        mode = str(eda_mode).lower()
        if mode not in ("individual", "intersect"):
            raise ConfigError(f"eda_mode {eda_mode!r} is not a mode of EDA",
                              "use 'individual' or 'intersect'",
                              details=[{"field": "eda_mode", "error": "unknown mode"}])
        model: dict[str, Any] = {"epsilon": epsilon, "mechanism": mechanism, "bins": bins}
        if categorical:
            model["categorical"] = list(categorical)
        if mode == "individual":
            stray = [k for k, v in (("prl_session_id", prl_session_id),
                                    ("paired_columns", paired_columns),
                                    ("pair_epsilon", pair_epsilon), ("bins2d", bins2d)) if v]
            if stray:
                raise ConfigError(f"{stray[0]} applies to eda_mode='intersect' only",
                                  "add eda_mode='intersect', or drop it",
                                  details=[{"field": stray[0], "error": "intersect mode only"}])
            return self.create_analytics_session("eda", name, description, data_config, model,
                                                 num_datasets, **policy)
        if not prl_session_id:
            raise ConfigError("eda_mode='intersect' needs prl_session_id",
                              "pass the id of a completed prl session (prl_session.id)",
                              details=[{"field": "prl_session_id", "error": "required"}])
        model.update({k: v for k, v in (("pair_epsilon", pair_epsilon), ("bins2d", bins2d))
                      if v is not None})
        data = {"clients": dict(data_config or {}), "prl_session_id": prl_session_id,
                "paired_columns": dict(paired_columns or {})}
        return self.create_analytics_session("eda_intersect", name, description, data, model,
                                             num_datasets, **policy)

    def _check_linkage(self, prl_session_id: Any) -> None:
        """An intersect session names a record linkage this coordinator ran to completion."""
        from jupyter_fed.errors import NotFoundError

        detail = [{"field": "data_config.prl_session_id", "error": "unknown prl session"}]
        try:
            info = self._backend.session(str(prl_session_id))
        except NotFoundError:
            raise ConfigError(f"prl_session_id {prl_session_id!r}: no such session",
                              "pass the id of a completed prl session (prl_session.id)",
                              details=detail) from None
        if info.get("package") != "prl" or info.get("status") != "completed":
            raise ConfigError(f"prl_session_id {prl_session_id!r} is a {info.get('package')} "
                              f"session that is {info.get('status')}, not a completed record "
                              "linkage", "pass the id of a completed prl session",
                              details=[{"field": "data_config.prl_session_id",
                                        "error": "not a completed prl session"}])

    def create_prl_session(self, name: str, description: str = "",
                           data_config: dict[str, Any] | None = None, **policy: Any) -> Session:
        """A private record linkage session: which rows of each party are the same people.

        Parameters
        ----------
        name, description
            Shown in listings.
        data_config
            ``{"clients": {client_name: {"id_columns": [...], "normalise": {...}}}, "protocol":
            "keyed_hash" | "psi"}`` (``clients`` may be left out: the other keys are then the
            clients); see :mod:`jupyter_fed.packages.prl.config`. The client names are those the
            tasks join with (``task_builder().prl(train, test, client_name=...)``) and that
            later vertical sessions (EDA intersect, SplitNN) use with ``prl_session_id``.
        policy
            Round policy (``round_timeout``, ``heartbeat_timeout``, ``max_retries``).

        Every client must join; the session then runs one round. ``metrics().as_dict()`` gives
        ``client_metrics[client][train|test] = {n_records, n_overlapped_records,
        frac_overlapped}``; ``results()`` adds the counts of missing and duplicate ids. Each
        runner keeps its aligned rows; the coordinator keeps only counts and an opaque digest.
        """
        from jupyter_fed.packages.prl.config import parse

        clients = parse(data_config).clients  # fails here, naming the field, on a bad config
        info = self._backend.create_session(
            name=name, description=description, package_name="prl",
            min_num_clients=len(clients), num_rounds=1, model_config={},
            data_config=dict(data_config or {}),
            policy={k: v for k, v in policy.items() if v is not None})
        return Session(self, info)

    def create_vfl_session(self, name: str, description: str = "", prl_session_id: str = "",
                           vfl_mode: str = "train", min_num_clients: int | None = None,
                           num_rounds: int = 5, package_name: str = "splitnn",
                           data_config: dict[str, Any] | None = None,
                           model_config: dict[str, Any] | None = None,
                           training_session_id: str | None = None, **policy: Any) -> Session:
        """A vertical federated learning session (SplitNN) over a record linkage's rows.

        Parameters
        ----------
        prl_session_id
            A completed ``prl`` session that linked the parties' datasets, with the client names
            ``data_config`` uses.
        vfl_mode
            ``"train"``, or ``"predict"`` with ``training_session_id``: the parties' networks of
            that training session (kept at their runners) predict the linked rows.
        min_num_clients
            Every client of ``data_config`` must join (the default).
        num_rounds
            Training epochs over the linked rows (ignored when predicting).
        package_name
            ``"splitnn"``; the reference's ``"iai_ffnet"`` is routed here. ``"vfl_glm"`` (the
            reference's ``"iai_glm"`` / ``"glm"``, strategy ``VflGlm``) fits a GLM instead; see
            :mod:`jupyter_fed.packages.vfl_glm`. ``"vfl_gbm"`` (the reference's ``"iai_gbm"``,
            strategy ``VflGbm``, also under ``"iai_ffnet"`` as its tutorial writes it) trains
            SecureBoost-style gradient-boosted trees; see
            :mod:`jupyter_fed.packages.vfl_gbm.config`. A prediction session left at the default
            takes the package of its training session.
        data_config
            ``{client: {"label_client": bool, "predictors": [...], "target": column | None}}``:
            exactly one label client, the only one with a target.
        model_config
            ``{"strategy": {"name": "SplitNN"}, "model": {"feature_models": {client: {"params":
            ...}}, "label_model": {"params": ...}}, "ml_task", "optimizer", "seed"}``; see
            :mod:`jupyter_fed.packages.splitnn.config`. A prediction session takes the training
            session's when none is given.

        Each party joins with ``task_builder().vfl_train(...)`` or ``.vfl_predict(...)``.
        """
        from jupyter_fed.packages import get_package

        if vfl_mode == "predict" and training_session_id and package_name == "splitnn":
            # the default name: predict with whatever vertical package trained the model
            try:
                trained_package = self._backend.session(training_session_id).get("package")
            except FedError:  # unknown: the coordinator's check names the field
                trained_package = None
            if trained_package in ("splitnn", "vfl_glm", "vfl_gbm"):
                package_name = trained_package
        spec = get_package(package_name)
        if spec.name in ("ffnet",):  # the reference names its VFL networks iai_ffnet
            spec = get_package("splitnn")
        if spec.name in ("glm",):  # ... and its VFL GLM iai_glm (strategy VflGlm)
            spec = get_package("vfl_glm")
        strategy = ((model_config or {}).get("strategy") or {}) if isinstance(
            model_config, dict) else {}
        if spec.name in ("gbm",) or (spec.name in ("ffnet", "splitnn") and isinstance(
                strategy, dict) and str(strategy.get("name", "")).lower() in ("vflgbm", "vfl_gbm")):
            # ... and its VFL trees iai_gbm, strategy VflGbm (its tutorial passes iai_ffnet)
            spec = get_package("vfl_gbm")
        model = dict(model_config or {})
        data = dict(data_config or {})
        if vfl_mode == "predict" and training_session_id and not model:
            trained = self._backend.session(training_session_id)["config"]
            model = dict(trained["model_config"])
            data = data or dict(trained["data_config"])
        model.pop("training_session_id", None)
        model.update({"prl_session_id": prl_session_id, "vfl_mode": vfl_mode})
        if training_session_id:
            model["training_session_id"] = training_session_id
        clients = data.get("clients", data) if isinstance(data, dict) else {}
        info = self._backend.create_session(
            name=name, description=description, package_name=spec.name,
            min_num_clients=min_num_clients or max(len(clients), 1),
            num_rounds=num_rounds if vfl_mode == "train" else 1, model_config=model,
            data_config=data, policy={k: v for k, v in policy.items() if v is not None})
        return Session(self, info)

    def session(self, session_id: str) -> Session:
        return Session(self, self._backend.session(session_id))

    def fl_session(self, session_id: str) -> Session:
        """An existing session by id, as the reference SDK spells it (same as :meth:`session`):
        ``client.fl_session(id).metrics().as_dict()`` (or ``.metrics.as_dict()``)."""
        return self.session(session_id)

    def sessions(self) -> list[Session]:
        return [Session(self, s) for s in self._backend.sessions()]

    def task_builder(self, runner: str | None = None) -> TaskBuilder:
        """Task builder for ``SessionTaskGroup.add_task``; ``runner=None`` finds datasets anywhere."""
        return TaskBuilder(self, runner)

    def close(self) -> None:
        """Release the connection (an embedded coordinator stops; its sessions resume at the next
        start)."""
        close = getattr(self._backend, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(url: str | None = None, *, token: str | None = None, embedded: bool | None = None,
            state_dir: str | Path | None = None,
            runners: list[dict[str, str]] | None = None) -> Client:
    """Connect to a coordinator: a Jupyter server's, or one embedded in this process.

    The same ``Client`` API and the same results either way; only where sessions run differs.

    Parameters
    ----------
    url
        A Jupyter server with the jupyter-fed extension (``http://host:port/base_url/``), or a
        headless ``jupyter fed coordinator``. Anything that does not start with ``http://`` or
        ``https://`` is taken as ``token``, as the reference SDK's ``connect("token")`` writes it.
    token
        That server's token. Default: the token of the running local server at ``url``, else
        ``$JUPYTER_TOKEN``. A token without a URL selects the configured coordinator:
        ``$JUPYTER_FED_URL`` if set, else the Jupyter server that started this kernel (it must
        accept the token); with neither, ``ConfigError``.
    embedded
        ``True`` runs the coordinator in this process. ``None`` (default): inside a kernel started
        by a Jupyter server with the extension, use that server (sessions outlive the kernel and
        the Lab sidebar sees them); anywhere else, embedded. ``False`` insists on a server and
        raises if none is found.
    state_dir
        Where the embedded coordinator keeps its database and models; giving it implies embedded.
    runners
        Runners to connect right away: ``[{"name": ..., "url": ..., "token": ...,
        "fingerprint": ...}]`` (``fingerprint`` pins an https runner's certificate).

    Raises
    ------
    ConfigError
        Contradictory arguments, or ``embedded=False`` with no server to be found.
    AuthError, NotFoundError
        The server at ``url`` refused the token, or does not run the extension.
    """
    from jupyter_fed.errors import ConfigError

    if url is not None and not _is_url(url):
        if token is not None:
            raise ConfigError(f"{url!r} is not a URL, and token= is given too",
                              "pass the server's URL (http://… or https://…) and token=")
        url, token = None, url
    if (url is not None or token is not None) and (embedded or state_dir is not None):
        raise ConfigError("url= and token= connect to a Jupyter server; embedded=True and "
                          "state_dir= are for an in-process coordinator", "give one or the other")
    if token is not None and url is None:
        url = _configured_url()
    backend: Any = None
    if url is not None:
        from jupyter_fed.client._rest import RestBackend, token_for

        backend = RestBackend(url, token if token is not None else token_for(url))
        try:
            backend.status()  # fail here, not at the first call, on a wrong URL or token
        except BaseException:
            backend.close()
            raise
    elif not embedded and state_dir is None:
        from jupyter_fed.client._rest import find_server

        backend = find_server()
        if backend is None and embedded is False:
            raise ConfigError("no Jupyter server with the jupyter_fed extension was found for this "
                              "kernel", "pass url= and token=, or use embedded=True")
    if backend is None:
        from jupyter_fed.client._embedded import EmbeddedBackend

        backend = EmbeddedBackend.shared(Path(state_dir) if state_dir else None)
    client = Client(backend)
    if runners:
        client.add_runners(runners)
    return client


def _is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def _configured_url() -> str:
    """The coordinator a bare token is for: ``$JUPYTER_FED_URL``, else this kernel's server."""
    import os

    configured = os.environ.get("JUPYTER_FED_URL", "").strip()
    if configured:
        if not _is_url(configured):
            raise ConfigError(f"JUPYTER_FED_URL={configured!r} is not a URL",
                              "set it to the coordinator's http(s)://host:port/base_url/")
        return configured
    from jupyter_fed.client._rest import find_server

    found = find_server()
    if found is not None:
        found.close()
        return found.url
    raise ConfigError("connect(token) needs a configured coordinator, and none is",
                      "set JUPYTER_FED_URL to the coordinator's URL (a Jupyter server with the "
                      "extension, or `jupyter fed coordinator`), run inside such a server, or "
                      "pass url=")
