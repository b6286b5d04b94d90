"""Where a simulation's virtual clients run: this process, Ray actors, or Dask workers.

An engine starts a few *hosts* (``_host.VirtualHost``), gives each the partitions of its share of
the clients (client ``i`` on host ``i mod hosts``), and runs steps there. Each host is one
process with one torch import however many clients it serves, so a hundred clients on two cores
cost two interpreters, not a hundred. The session's engine, round policy, strategies and metrics
are the coordinator's own; an engine only decides where a step's arithmetic happens.
"""

from __future__ import annotations

import asyncio
import os
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jupyter_fed.errors import ConfigError
from jupyter_fed.simulation._host import HostSpec, VirtualHost

__all__ = ["DaskEngine", "Engine", "LocalEngine", "RayEngine", "make_engine"]

Report = tuple[dict[str, Any], bytes | None]


class Engine(ABC):
    """Hosts for simulated clients; :meth:`start` once, :meth:`submit` per step, :meth:`close`."""

    name: str = ""
    hosts: int = 1

    def place(self, index: int) -> int:
        """The host of the ``index``-th client: round robin, so hosts get equal shares."""
        return index % self.hosts

    def host_count(self, clients: int) -> int:
        """How many hosts to start for ``clients`` clients."""
        return self.hosts

    @abstractmethod
    def start(self, specs: list[HostSpec]) -> None:
        """Start ``len(specs)`` hosts (``self.hosts`` of them), host ``h`` with ``specs[h]``."""

    @abstractmethod
    def submit(self, host: int, spec_json: str, payload: bytes,
               policy: dict[str, Any]) -> asyncio.Future[Report]:
        """Hand one step to host ``host`` now; the future gives the worker's report and the
        result's arrays. Not a coroutine on purpose: the step must be queued at the host when
        the runner accepts it, not when the event loop next gets round to a task — with a
        hundred clients dispatched at once, that is after all of them were accepted."""

    @abstractmethod
    def close(self) -> None:
        """Stop what :meth:`start` started (an engine handed in by the caller stays up)."""


class LocalEngine(Engine):
    """Hosts in this process; steps run on ``workers`` threads (1: one after another).

    Parameters
    ----------
    workers
        Threads running steps at once. Torch releases the GIL in its kernels, so two threads
        use two cores for training; 1 (the default) is the most reproducible.
    """

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        self.hosts = 1
        self.workers = max(1, int(workers))
        self._pool: ThreadPoolExecutor | None = None
        self._host: VirtualHost | None = None

    def start(self, specs: list[HostSpec]) -> None:
        self._host = VirtualHost(specs[0])
        self._host.warm()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="jupyter-fed-sim")

    def submit(self, host: int, spec_json: str, payload: bytes,
               policy: dict[str, Any]) -> asyncio.Future[Report]:
        assert self._host is not None and self._pool is not None, "start() the engine first"
        return asyncio.get_running_loop().run_in_executor(
            self._pool, self._host.run, spec_json, payload, policy)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class RayEngine(Engine):
    """Hosts as Ray actors, one CPU each; joins a running Ray (``ray.init`` already called, or
    ``address=``), else starts a lean local one (no dashboard, a small object store).

    Parameters
    ----------
    actors
        Number of actors (default: the CPUs Ray has, at most the number of clients).
    address
        A Ray cluster to join (``"auto"``, ``"ray://host:10001"``); default: this machine.
    num_cpus
        CPUs of a local Ray started here (default: all of this machine's).
    object_store_mb
        Object store of a local Ray started here.
    """

    name = "ray"

    def __init__(self, actors: int | None = None, *, address: str | None = None,
                 num_cpus: int | None = None, object_store_mb: int = 200) -> None:
        self.actors, self.address, self.num_cpus = actors, address, num_cpus
        self.object_store_mb = object_store_mb
        self._started_ray = False
        self._actors: list[Any] = []

    def start(self, specs: list[HostSpec]) -> None:
        ray = _need("ray", "ray")
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            if self.address:
                kwargs["address"] = self.address
            else:
                kwargs.update(num_cpus=self.num_cpus or os.cpu_count() or 1,
                              object_store_memory=self.object_store_mb * 2**20)
            path = os.environ.get("PYTHONPATH")
            if path and not self.address:  # local workers import jupyter_fed as this process does
                kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
            os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # no GPUs to hide
            ray.init(**kwargs)
            self._started_ray = True
        actor = ray.remote(num_cpus=1)(VirtualHost)
        self._actors = [actor.remote(spec) for spec in specs]
        ray.get([a.warm.remote() for a in self._actors])

    def host_count(self, clients: int) -> int:
        ray = _need("ray", "ray")
        if self.actors:
            return max(1, min(self.actors, clients))
        cpus = int(ray.cluster_resources().get("CPU", 1)) if ray.is_initialized() else \
            (self.num_cpus or os.cpu_count() or 1)
        return max(1, min(cpus, clients))

    def submit(self, host: int, spec_json: str, payload: bytes,
               policy: dict[str, Any]) -> asyncio.Future[Report]:
        ref = self._actors[host].run.remote(spec_json, payload, policy)
        return asyncio.wrap_future(ref.future())

    def close(self) -> None:
        ray = _need("ray", "ray")
        for a in self._actors:
            ray.kill(a)
        self._actors = []
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False


_DASK_HOSTS: dict[str, VirtualHost] = {}
"""The hosts living in a Dask worker process, by simulation key."""


def _dask_install(key: str, spec: HostSpec) -> int:
    host = _DASK_HOSTS[key] = VirtualHost(spec)
    return host.warm()


def _dask_run(key: str, spec_json: str, payload: bytes, policy: dict[str, Any]) -> Report:
    return _DASK_HOSTS[key].run(spec_json, payload, policy)


def _dask_drop(key: str) -> None:
    _DASK_HOSTS.pop(key, None)


class DaskEngine(Engine):
    """Hosts on Dask workers, one per worker; a given ``distributed.Client``, else a
    ``LocalCluster`` of ``workers`` single-threaded worker processes started here.

    Parameters
    ----------
    client
        A connected ``distributed.Client`` (an existing cluster); it stays up after the run.
    workers
        Worker processes of a local cluster started here (default: this machine's CPUs).
    """

    name = "dask"

    def __init__(self, client: Any = None, *, workers: int | None = None) -> None:
        self.client, self.workers = client, workers
        self._cluster: Any = None
        self._addresses: list[str] = []
        self._completed: Any = None
        self._closed = False
        self._waiting: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future[Report]]] = {}
        import secrets

        self._key = f"sim-{secrets.token_hex(6)}"

    def host_count(self, clients: int) -> int:
        self._connect()
        return max(1, min(len(self.client.scheduler_info()["workers"]), clients))

    def _connect(self) -> None:
        if self.client is not None:
            return
        distributed = _need("distributed", "dask")
        self._cluster = distributed.LocalCluster(
            n_workers=self.workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
            dashboard_address=":0", scheduler_kwargs={"dashboard": False})
        self.client = distributed.Client(self._cluster)

    def start(self, specs: list[HostSpec]) -> None:
        self._connect()
        workers = sorted(self.client.scheduler_info()["workers"])
        self._addresses = [workers[h % len(workers)] for h in range(len(specs))]
        futures = [self.client.submit(_dask_install, self._key, spec, workers=[addr],
                                      allow_other_workers=False, pure=False)
                   for spec, addr in zip(specs, self._addresses, strict=True)]
        self.client.gather(futures)

    def submit(self, host: int, spec_json: str, payload: bytes,
               policy: dict[str, Any]) -> asyncio.Future[Report]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Report] = loop.create_future()
        fut = self.client.submit(_dask_run, self._key, spec_json, payload, policy,
                                 workers=[self._addresses[host]], allow_other_workers=False,
                                 pure=False)
        self._waiting[fut.key] = (loop, done)
        self._results().add(fut)
        return done

    def _results(self) -> Any:
        """One ``as_completed`` that fetches finished steps' results in batches, on one thread
        (a ``result()`` per step would cost a round trip to the scheduler each)."""
        if self._completed is None:
            import threading

            distributed = _need("distributed", "dask")
            self._completed = distributed.as_completed([], with_results=True, raise_errors=False)
            threading.Thread(target=self._deliver, name="jupyter-fed-dask-results",
                             daemon=True).start()
        return self._completed

    def _deliver(self) -> None:
        assert self._completed is not None
        while not self._closed:
            for batch in self._completed.batches():
                for fut, outcome in batch:
                    loop, done = self._waiting.pop(fut.key, (None, None))
                    if loop is None or done is None:
                        continue
                    if fut.status == "finished":
                        loop.call_soon_threadsafe(_set, done, outcome, None)
                    else:
                        exc = outcome if isinstance(outcome, BaseException) else \
                            RuntimeError(f"dask task {fut.status}")
                        loop.call_soon_threadsafe(_set, done, None, exc)
            if not self._closed:  # drained: wait for the next step to be submitted
                import time

                time.sleep(0.005)

    def close(self) -> None:
        self._closed = True
        if self.client is None:
            return
        try:
            self.client.run(_dask_drop, self._key)
        except Exception:  # a cluster already gone has nothing left to drop
            pass
        if self._cluster is not None:
            self.client.close()
            self._cluster.close()
            self.client = self._cluster = None


def _set(fut: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


def _need(module: str, engine: str) -> Any:
    """Ray or Dask's ``distributed``, imported only by the engine that uses it."""
    try:
        if module == "ray":
            import ray

            return ray
        import distributed

        return distributed
    except ImportError:
        raise ConfigError(f"the {engine} engine needs {module}, which is not installed",
                          f"pip install 'jupyter-fed[simulation]' (or {module}), or use "
                          "engine='local'") from None


def make_engine(engine: str | Engine, **options: Any) -> Engine:
    """An :class:`Engine` from its name (``local``, ``ray``, ``dask``) and options, or as given."""
    if isinstance(engine, Engine):
        return engine
    kinds: dict[str, type[Engine]] = {"local": LocalEngine, "ray": RayEngine, "dask": DaskEngine}
    kind = kinds.get(str(engine).lower())
    if kind is None:
        raise ConfigError(f"unknown simulation engine {engine!r}",
                          "use engine='local', 'ray' or 'dask' (or an Engine instance)")
    try:
        return kind(**options)
    except TypeError as exc:
        raise ConfigError(f"engine {engine!r}: {exc}", "check engine_options") from None
