"""The coordinator's connections to runners: pinned clients, health, the catalog across them.

Runner tokens live here (and in the coordinator's store) and never leave: the kernel and the
browser only ever see runner names, URLs and fingerprints.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_fed.coordinator.limits import AttemptLimiter
from jupyter_fed.coordinator.runners import RunnerClient
from jupyter_fed.coordinator.store import CoordinatorStore
from jupyter_fed.errors import ConfigError, FedError, NotFoundError
from jupyter_fed.wire import NAME_RE

__all__ = ["Connections"]


class Connections:
    """One pooled client per runner, made from the stored connection on first use."""

    def __init__(self, store: CoordinatorStore) -> None:
        self.store = store
        self._runners: dict[str, RunnerClient] = {}
        self.virtual: dict[str, Any] = {}
        """Simulated runners (``jupyter_fed.simulation``) by name: answered in place of a
        connection, never stored, listed only in the catalog sessions are joined against."""
        self.rows: dict[tuple[str, str], int] = {}
        """(runner, dataset) → registered rows, from the last catalog read (update validation)."""
        self._join_attempts = AttemptLimiter(attempts=10, window=60.0)
        self._kdf_slot = asyncio.Semaphore(1)  # scrypt: ~0.1 s of a core and 32 MiB each

    async def aclose(self) -> None:
        for client in self._runners.values():
            await client.aclose()
        self._runners.clear()

    def runner(self, name: str) -> RunnerClient:
        if name in self.virtual:
            return self.virtual[name]  # type: ignore[no-any-return]
        client = self._runners.get(name)
        if client is None:
            row = next((r for r in self.store.runners() if r["name"] == name), None)
            if row is None:
                raise NotFoundError(f"no runner named {name!r}", "add it with client.add_runner()")
            client = self._runners[name] = RunnerClient(name, row["url"], row["token"],
                                                        fingerprint=row["fingerprint"])
        return client

    async def add_runner(self, name: str, url: str, token: str,
                         fingerprint: str | None = None) -> dict[str, Any]:
        """Connect a runner after checking its address, certificate, and that it takes the token."""
        if not NAME_RE.match(name):
            raise ConfigError(f"runner name {name!r} is invalid",
                              "start with a letter; use letters, digits, '-' and '_'")
        probe = RunnerClient(name, url, token, fingerprint=fingerprint)
        try:
            # reaches it, checks the pinned certificate and the token
            _, health = await asyncio.gather(probe.datasets(), probe.health())
        except BaseException:
            await probe.aclose()
            raise
        same = next((r for r in self.store.runners() if r["name"] == name
                     and (r["url"], r["token"], r["fingerprint"]) == (url, token, fingerprint)),
                    None)
        if same is not None and name in self._runners:
            await probe.aclose()  # unchanged: running sessions keep the connection they use
        else:
            old = self._runners.pop(name, None)
            if old is not None:  # steps in flight still hold it: close it once they are done
                asyncio.get_running_loop().call_later(
                    300, lambda: asyncio.ensure_future(old.aclose()))
            self.store.put_runner(name, url, token, fingerprint)
            self._runners[name] = probe  # its TLS connection is warm: the first round reuses it
        return {"name": name, "url": url, "fingerprint": fingerprint,
                **{k: health.get(k) for k in ("version", "latency_ms")}}

    async def add_runners(self, runners: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Connect several runners at once (``{name, url, token, fingerprint}`` each)."""
        return list(await asyncio.gather(*(self.add_runner(r["name"], r["url"], r["token"],
                                                           r.get("fingerprint"))
                                           for r in runners)))

    async def join_invitation(self, blob: str, password: str, name: str | None = None, *,
                              client: str = "local") -> dict[str, Any]:
        """Open an invitation, redeem it at its runner (once), and keep the connection.

        The token inside never leaves the coordinator: the kernel and the browser only ever see
        the runner's name, URL and fingerprint. ``client`` (the caller's address) is allowed a
        few attempts a minute; the password check (scrypt) runs off the event loop,
        one at a time (see ``limits.py``).
        """
        from jupyter_fed.wire.invitation import open_blob

        self._join_attempts.check(client, "invitation attempts")
        async with self._kdf_slot:
            inv = await asyncio.to_thread(open_blob, blob, password)
        name = name or inv["runner"]
        if not NAME_RE.match(name):
            raise ConfigError(f"runner name {name!r} is invalid", "pass name=")
        redeem = RunnerClient(name, inv["url"], inv["token"], fingerprint=inv.get("fingerprint"))
        try:
            await redeem.admin("POST", f"/v1/invitations/{inv['invitation']}/redeem")
        finally:
            await redeem.aclose()
        return await self.add_runner(name, inv["url"], inv["token"], inv.get("fingerprint"))

    async def runner_admin(self, runner: str, method: str, path: str, body: Any = None,
                           params: dict[str, Any] | None = None) -> Any:
        """Forward an administrative call to a runner with the stored token (``client.auth``)."""
        if not path.startswith("/v1/") or ".." in path:
            raise ConfigError(f"not a runner API path: {path!r}", "")
        return await self.runner(runner).admin(method, path, body, params)

    async def remove_runner(self, name: str) -> None:
        if not self.store.delete_runner(name):
            raise NotFoundError(f"no runner named {name!r}", "")
        client = self._runners.pop(name, None)
        if client is not None:
            await client.aclose()

    async def runners(self) -> list[dict[str, Any]]:
        """Every connection with its health, latency and number of datasets (tokens never shown)."""
        rows = self.store.runners()

        async def one(row: dict[str, Any]) -> dict[str, Any]:
            client = self.runner(row["name"])
            health = await client.health()
            out = {"name": row["name"], "url": row["url"], "status": health["status"],
                   "latency_ms": health.get("latency_ms"), "version": health.get("version"),
                   "datasets": None, "error": health.get("error")}
            if health["status"] == "ok":
                try:
                    out["datasets"] = len(await client.datasets())
                except FedError as exc:
                    out["status"], out["error"] = "error", exc.message
            return out

        return list(await asyncio.gather(*(one(r) for r in rows)))

    def attach(self, name: str, runner: Any) -> None:
        """Serve ``name`` from ``runner`` (a simulated runner) until :meth:`detach`."""
        if name in self._runners or any(r["name"] == name for r in self.store.runners()):
            raise ConfigError(f"runner name {name!r} is taken", "")
        self.virtual[name] = runner

    def detach(self, name: str) -> None:
        self.virtual.pop(name, None)
        for key in [k for k in self.rows if k[0] == name]:
            del self.rows[key]

    async def catalog(self, simulated: bool = False) -> dict[str, Any]:
        """Datasets across runners; unreachable runners are listed under ``errors``, not fatal.
        With ``simulated``, simulated runners' datasets too (what sessions are joined against)."""
        rows = self.store.runners() + ([{"name": n} for n in self.virtual] if simulated else [])
        results = await asyncio.gather(*(self.runner(r["name"]).datasets() for r in rows),
                                       return_exceptions=True)
        datasets, errors = [], []
        for row, res in zip(rows, results, strict=True):
            if isinstance(res, BaseException):
                errors.append({"runner": row["name"], "message": getattr(res, "message", str(res))})
                continue
            for info in res:
                self.rows[(row["name"], info.name)] = info.num_rows
                datasets.append({"runner": row["name"], **info.model_dump(mode="json")})
        return {"datasets": datasets, "errors": errors}

    async def row_count(self, runner: str, dataset: str) -> int | None:
        if (runner, dataset) not in self.rows:
            try:
                await self.catalog(simulated=runner in self.virtual)
            except FedError:
                return None
        return self.rows.get((runner, dataset))
