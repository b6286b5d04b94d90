"""The coordinator's view of one runner: an httpx client that speaks the wire protocol.

Every failure becomes a ``FedError``: a JSON error body from the runner is rebuilt into its own
subclass, and a connection problem or timeout becomes ``RunnerUnavailable`` naming the runner.
Whatever else answers is summarised by its status, never echoed: the address may be any service
a user typed in.

The bearer token goes out only once the address has been checked (every address its name
resolves to, see ``urls.py``) and the service there has proved to be the runner: over HTTPS by
the pinned certificate, over loopback HTTP by a hello signed with the runner's key (when its
fingerprint is known) — in any case by answering ``/v1/health`` as a jupyter-fed runner, asked
without the token.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from jupyter_fed.coordinator.urls import check_runner_address, check_runner_url
from jupyter_fed.errors import AuthError, FedError, RunnerTimeout, RunnerUnavailable, error_from_body
from jupyter_fed.wire import DatasetInfo, Health, TaskSpec, TaskStatus, answer
from jupyter_fed.wire.hello import new_nonce
from jupyter_fed.wire.hello import verify as verify_hello
from jupyter_fed.wire.tls import pinned_context

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
KEEPALIVE_EXPIRY = 2.0
"""Seconds an idle connection to a runner is kept: well under the runner's own keep-alive (5 s),
so the coordinator never reuses a connection the runner is closing at that moment (which surfaced
as RemoteProtocolError and a retry on every runner at a session's first step)."""


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
                await check_runner_address(self._parsed.host)
                verify: Any = True
                if self._parsed.scheme == "https":
                    # Trust exactly the pinned certificate (fetched off the loop: it blocks).
                    verify = await asyncio.to_thread(pinned_context, self._parsed.host,
                                                     self._parsed.port or 443,
                                                     str(self._fingerprint))
                http = self._new_http(verify, {"User-Agent": "jupyter-fed-coordinator"})
                try:
                    await self._hello(http)
                finally:
                    await http.aclose()
                self._http = self._new_http(verify, {
                    "Authorization": f"Bearer {self._token}",
                    "User-Agent": "jupyter-fed-coordinator"})
            return self._http

    def _new_http(self, verify: Any, headers: dict[str, str]) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url, timeout=self._timeout, verify=verify, follow_redirects=False,
            headers=headers, limits=httpx.Limits(max_connections=16, max_keepalive_connections=8,
                                keepalive_expiry=KEEPALIVE_EXPIRY),
            trust_env=False)  # never route runner traffic through ambient proxies

    async def _hello(self, http: httpx.AsyncClient) -> None:
        """Make sure a jupyter-fed runner answers here (and, over HTTP, the expected one)."""
        nonce = new_nonce()
        try:
            resp = await http.get("/v1/health", params={"nonce": nonce}, timeout=5.0)
        except httpx.HTTPError as exc:
            raise RunnerUnavailable(f"runner {self.name!r} at {self.url} is unreachable: "
                                    f"{type(exc).__name__}", "start the runner, or check its URL") \
                from None
        try:
            health = Health.model_validate(resp.json()) if resp.status_code == 200 else None
        except ValueError:
            health = None
        if health is None:
            raise RunnerUnavailable(f"{self.url} did not answer as a jupyter-fed runner (HTTP "
                                    f"{resp.status_code} to its health check); no token was sent",
                                    "check the runner's address and port")
        if self._parsed.scheme == "http" and self._fingerprint:
            hello = health.hello
            if hello is None or hello.nonce != nonce:
                raise AuthError(f"{self.url} did not prove it is the runner (no signed hello); "
                                "no token was sent", "check the runner's address and port")
            verify_hello(hello.certificate, nonce, hello.signature, self._fingerprint)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        http = await self._client()
        try:
            request = http.build_request(method, path, **kw)
            if "files" in kw:
                # A multipart body streams as ~10 small pieces, each a TLS record and a send:
                # assembled first, it goes out in one (a millisecond a step, at every step).
                request.read()
            resp = await http.send(request)
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
                body = None
            if not (isinstance(body, dict) and isinstance(body.get("code"), str)
                    and isinstance(body.get("message"), str)):
                # Not a runner's error: say what happened, never what the service said.
                raise RunnerUnavailable(f"runner {self.name!r} answered {method} {path} with "
                                        f"HTTP {resp.status_code} and no jupyter-fed error",
                                        "check the runner's log and address")
            err = error_from_body(body, resp.status_code)
            err.message = f"runner {self.name!r}: {err.message}"
            raise err
        return resp

    def _json(self, resp: httpx.Response) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise RunnerUnavailable(f"runner {self.name!r} answered with something that is not "
                                    "JSON", "check the runner's address and version") from None

    async def health(self) -> dict[str, Any]:
        """Health plus round-trip latency in milliseconds; never raises for an unreachable runner."""
        started = time.perf_counter()
        try:
            resp = await self._request("GET", "/v1/health", timeout=5.0)
            info = Health.model_validate(self._json(resp)).model_dump(exclude={"hello"})
            info["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
            return info
        except (FedError, ValueError) as exc:
            message = exc.message if isinstance(exc, FedError) else "an invalid health answer"
            return {"status": "unreachable", "name": self.name, "error": message,
                    "latency_ms": None}

    async def datasets(self) -> list[DatasetInfo]:
        resp = await self._request("GET", "/v1/datasets")
        body = self._json(resp)
        try:
            return [DatasetInfo.model_validate(d) for d in body]
        except (TypeError, ValueError):
            raise RunnerUnavailable(f"runner {self.name!r} sent a catalog that is not a list of "
                                    "datasets", "check the runner's version") from None

    async def submit(self, spec: TaskSpec, tensors: bytes | None) -> TaskStatus:
        return (await self.submit_wait(spec, tensors))[0]

    async def submit_wait(self, spec: TaskSpec, tensors: bytes | None, wait: float = 0.0,
                          timeout: float | None = None, inline: int = 0
                          ) -> tuple[TaskStatus, bytes | None]:
        """Submit a step; with ``wait``, the runner answers when it ends or after ``wait``
        seconds, and with ``inline``, with the step's arrays too when they are at most that many
        bytes (``wire.answer``). A runner that predates either answers with the status alone,
        at once: the caller polls and fetches as before."""
        files: dict[str, Any] = {"spec": (None, spec.model_dump_json(), "application/json")}
        if tensors:
            files["tensors"] = ("tensors.safetensors", tensors, "application/octet-stream")
        extra: dict[str, Any] = {}
        if wait > 0:
            extra = {"params": {"wait": round(wait, 3), **({"inline": inline} if inline else {})},
                     "timeout": httpx.Timeout(timeout or wait + 30.0, connect=5.0)}
        resp = await self._request("POST", "/v1/tasks", files=files, **extra)
        if resp.headers.get("content-type", "").startswith(answer.MEDIA_TYPE):
            try:
                status, data = answer.unpack(resp.content)
                return TaskStatus.model_validate_json(status), data
            except ValueError:  # pydantic's ValidationError is one
                raise RunnerUnavailable(f"runner {self.name!r} sent a malformed task answer",
                                        "check the runner's version") from None
        return TaskStatus.model_validate(self._json(resp)), None

    async def status(self, task_id: str, wait: float = 0.0, timeout: float | None = None
                     ) -> TaskStatus:
        """Long-poll a task: the runner answers when it ends or after ``wait`` seconds."""
        resp = await self._request("GET", f"/v1/tasks/{task_id}", params={"wait": round(wait, 3)},
                                   timeout=httpx.Timeout(timeout or wait + 15.0, connect=5.0))
        return TaskStatus.model_validate(self._json(resp))

    async def result(self, task_id: str) -> bytes:
        resp = await self._request("GET", f"/v1/tasks/{task_id}/result")
        return resp.content

    async def admin(self, method: str, path: str, body: Any = None,
                    params: dict[str, Any] | None = None) -> Any:
        """An administrative call (users, tokens, budget, audit, policy) with this token."""
        resp = await self._request(method, path, json=body, params=params)
        return self._json(resp) if resp.content else None

    async def cancel(self, task_id: str) -> TaskStatus:
        resp = await self._request("POST", f"/v1/tasks/{task_id}/cancel")
        return TaskStatus.model_validate(self._json(resp))
