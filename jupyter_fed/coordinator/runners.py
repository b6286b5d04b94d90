"""The coordinator's view of one runner: an httpx client that speaks the wire protocol.

Every failure becomes a ``FedError``: a JSON error body from the runner is rebuilt into its own
subclass, and a connection problem or timeout becomes ``RunnerUnavailable`` naming the runner.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from jupyter_fed.coordinator.urls import check_runner_url
from jupyter_fed.errors import FedError, RunnerTimeout, RunnerUnavailable, error_from_body
from jupyter_fed.wire import DatasetInfo, Health, TaskSpec, TaskStatus
from jupyter_fed.wire.tls import pinned_context

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class RunnerClient:
    """Async client for one runner; share one per runner, it pools connections."""

    def __init__(self, name: str, url: str, token: str, *, fingerprint: str | None = None,
                 timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> None:
        self.name, self.url = name, url.rstrip("/")
        self._parsed = check_runner_url(self.url, fingerprint)
        self._fingerprint, self._token, self._timeout = fingerprint, token, timeout
        self._http: httpx.AsyncClient | None = None
        self._lock = asyncio.Lock()

    async def _client(self) -> httpx.AsyncClient:
        async with self._lock:
            if self._http is None:
                verify: Any = True
                if self._parsed.scheme == "https":
                    # Trust exactly the pinned certificate (fetched off the loop: it blocks).
                    verify = await asyncio.to_thread(pinned_context, self._parsed.host,
                                                     self._parsed.port or 443,
                                                     str(self._fingerprint))
                self._http = httpx.AsyncClient(
                    base_url=self.url, timeout=self._timeout, verify=verify, follow_redirects=False,
                    headers={"Authorization": f"Bearer {self._token}",
                             "User-Agent": "jupyter-fed-coordinator"},
                    limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
                    trust_env=False)  # never route runner traffic through ambient proxies
            return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        http = await self._client()
        try:
            resp = await http.request(method, path, **kw)
        except httpx.TimeoutException:
            raise RunnerTimeout(f"runner {self.name!r} did not answer in time ({method} {path})",
                                "check that the runner is up and not overloaded") from None
        except httpx.HTTPError as exc:
            raise RunnerUnavailable(f"runner {self.name!r} at {self.url} is unreachable: "
                                    f"{type(exc).__name__}", "start the runner, or check its URL") \
                from None
        if resp.is_redirect:
            raise RunnerUnavailable(f"runner {self.name!r} answered {method} {path} with a "
                                    f"redirect ({resp.status_code}); redirects are never followed",
                                    "register the runner's final URL")
        if not resp.is_success:
            try:
                body = resp.json()
            except ValueError:
                body = {"message": resp.text[:200] or f"HTTP {resp.status_code}"}
            err = error_from_body(body, resp.status_code)
            err.message = f"runner {self.name!r}: {err.message}"
            raise err
        return resp

    async def health(self) -> dict[str, Any]:
        """Health plus round-trip latency in milliseconds; never raises for an unreachable runner."""
        started = time.perf_counter()
        try:
            resp = await self._request("GET", "/v1/health", timeout=5.0)
            info = Health.model_validate(resp.json()).model_dump()
            info["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
            return info
        except FedError as exc:
            return {"status": "unreachable", "name": self.name, "error": exc.message,
                    "latency_ms": None}

    async def datasets(self) -> list[DatasetInfo]:
        resp = await self._request("GET", "/v1/datasets")
        return [DatasetInfo.model_validate(d) for d in resp.json()]

    async def submit(self, spec: TaskSpec, tensors: bytes | None) -> TaskStatus:
        files: dict[str, Any] = {"spec": (None, spec.model_dump_json(), "application/json")}
        if tensors:
            files["tensors"] = ("tensors.safetensors", tensors, "application/octet-stream")
        resp = await self._request("POST", "/v1/tasks", files=files)
        return TaskStatus.model_validate(resp.json())

    async def status(self, task_id: str, wait: float = 0.0, timeout: float | None = None
                     ) -> TaskStatus:
        """Long-poll a task: the runner answers when it ends or after ``wait`` seconds."""
        resp = await self._request("GET", f"/v1/tasks/{task_id}", params={"wait": round(wait, 3)},
                                   timeout=httpx.Timeout(timeout or wait + 15.0, connect=5.0))
        return TaskStatus.model_validate(resp.json())

    async def result(self, task_id: str) -> bytes:
        resp = await self._request("GET", f"/v1/tasks/{task_id}/result")
        return resp.content

    async def admin(self, method: str, path: str, body: Any = None,
                    params: dict[str, Any] | None = None) -> Any:
        """An administrative call (users, tokens, budget, audit, policy) with this token."""
        resp = await self._request(method, path, json=body, params=params)
        return resp.json() if resp.content else None

    async def cancel(self, task_id: str) -> TaskStatus:
        resp = await self._request("POST", f"/v1/tasks/{task_id}/cancel")
        return TaskStatus.model_validate(resp.json())
