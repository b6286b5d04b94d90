"""The coordinator's view of one runner: an HTTP client that speaks the wire protocol.

Every failure becomes a ``FedError``: a JSON error body from the runner is rebuilt into its own
subclass, and a connection problem or timeout becomes ``RunnerUnavailable`` naming the runner.
Whatever else answers is summarised by its status, never echoed: the address may be any service
a user typed in.

The bearer token goes out only once the address has been checked (every address its name
resolves to, see ``urls.py``) and the service there has proved to be the runner: over HTTPS by
the pinned certificate, over loopback HTTP by a hello signed with the runner's key (when its
fingerprint is known) — in any case by answering ``/v1/health`` as a jupyter-fed runner, asked
without the token.

The client is aiohttp's: a step is one request to every runner of the session, many times a
second in a tree-growing or split-learning session, and aiohttp spends about a third of the CPU
httpx does on one (0.5 against 1.3 ms for a step's request and answer, measured over TLS on
loopback) — the coordinator's share of every exchange.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from jupyter_fed.coordinator.urls import check_runner_address, check_runner_url
from jupyter_fed.errors import AuthError, FedError, RunnerTimeout, RunnerUnavailable, error_from_body
from jupyter_fed.wire import DatasetInfo, Health, TaskSpec, TaskStatus, answer
from jupyter_fed.wire.hello import new_nonce
from jupyter_fed.wire.hello import verify as verify_hello
from jupyter_fed.wire.tls import pinned_context

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=5.0, sock_read=30.0)
"""Seconds to connect, and to wait for each read of an answer (not for the whole answer)."""
KEEPALIVE_EXPIRY = 2.0
"""Seconds an idle connection to a runner is kept: well under the runner's own keep-alive (5 s),
so the coordinator never reuses a connection the runner is closing at that moment (which surfaced
as a disconnection and a retry on every runner at a session's first step)."""
MAX_CONNECTIONS = 16


def _timeout(seconds: float | None) -> aiohttp.ClientTimeout | None:
    """A read timeout of ``seconds`` (connecting still within 5 s); ``None``: the default."""
    return None if seconds is None else aiohttp.ClientTimeout(total=None, connect=5.0,
                                                              sock_read=seconds)


def _query(params: Mapping[str, Any] | None) -> list[tuple[str, str]] | None:
    """Query parameters as strings, as a web client writes them: ``true``/``false`` for
    booleans, a list as the key repeated, ``None`` left out."""
    if not params:
        return None
    out: list[tuple[str, str]] = []
    for key, value in params.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None:
                out.append((str(key), ("true" if v else "false") if isinstance(v, bool)
                            else str(v)))
    return out


@dataclass(frozen=True)
class _Answer:
    """A runner's answer, read whole (they are bounded: statuses, catalogs, a step's arrays)."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def json(self) -> Any:
        return json.loads(self.content)


class RunnerClient:
    """Async client for one runner; share one per runner, it pools connections."""

    def __init__(self, name: str, url: str, token: str, *, fingerprint: str | None = None,
                 timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT) -> None:
        self.name, self.url = name, url.rstrip("/")
        self._parsed = check_runner_url(self.url, fingerprint)
        self._fingerprint, self._token, self._timeout = fingerprint, token, timeout
        self._http: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    async def _client(self) -> aiohttp.ClientSession:
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
                    await http.close()
                self._http = self._new_http(verify, {
                    "Authorization": f"Bearer {self._token}",
                    "User-Agent": "jupyter-fed-coordinator"})
            return self._http

    def _new_http(self, verify: Any, headers: dict[str, str]) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=verify, limit=MAX_CONNECTIONS,
                                         keepalive_timeout=KEEPALIVE_EXPIRY)
        # never route runner traffic through ambient proxies, nor send ambient credentials
        return aiohttp.ClientSession(connector=connector, timeout=self._timeout, headers=headers,
                                     trust_env=False, cookie_jar=aiohttp.DummyCookieJar())

    async def _hello(self, http: aiohttp.ClientSession) -> None:
        """Make sure a jupyter-fed runner answers here (and, over HTTP, the expected one)."""
        nonce = new_nonce()
        try:
            resp = await self._send(http, "GET", "/v1/health", params={"nonce": nonce},
                                    timeout=5.0)
        except (aiohttp.ClientError, TimeoutError) as exc:
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
            await self._http.close()

    async def _send(self, http: aiohttp.ClientSession, method: str, path: str, *,
                    params: Mapping[str, Any] | None = None, json: Any = None,
                    files: Mapping[str, tuple[str | None, Any, str]] | None = None,
                    timeout: float | None = None) -> _Answer:
        kw: dict[str, Any] = {"params": _query(params), "allow_redirects": False}
        if json is not None:
            kw["json"] = json
        if files is not None:
            form = aiohttp.FormData()
            for field, (filename, value, content_type) in files.items():
                form.add_field(field, value, content_type=content_type, filename=filename)
            writer = form()
            # assembled first, the body goes out with its headers in one write (a step's
            # request is otherwise a TLS record and a send per part)
            kw["data"] = await writer.as_bytes()
            kw["headers"] = {"Content-Type": writer.content_type}
        if timeout is not None:
            kw["timeout"] = _timeout(timeout)
        async with http.request(method, self.url + path, **kw) as resp:
            return _Answer(resp.status, resp.headers, await resp.read())

    async def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                       json: Any = None, files: Mapping[str, tuple[str | None, Any, str]] | None
                       = None, timeout: float | None = None) -> _Answer:
        http = await self._client()
        try:
            resp = await self._send(http, method, path, params=params, json=json, files=files,
                                    timeout=timeout)
        except TimeoutError:  # aiohttp's own timeouts are TimeoutErrors too
            raise RunnerTimeout(f"runner {self.name!r} did not answer in time ({method} {path})",
                                "check that the runner is up and not overloaded") from None
        except aiohttp.ClientError as exc:
            raise RunnerUnavailable(f"runner {self.name!r} at {self.url} is unreachable: "
                                    f"{type(exc).__name__}", "start the runner, or check its URL") \
                from None
        if 300 <= resp.status_code < 400:
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

    def _json(self, resp: _Answer) -> Any:
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
                     "timeout": timeout or wait + 30.0}
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
                                   timeout=timeout or wait + 15.0)
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
