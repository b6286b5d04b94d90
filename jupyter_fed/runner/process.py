"""Starting and stopping a runner process."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jupyter_fed.errors import ConfigError, ConflictError, PermissionDenied
from jupyter_fed.runner.accounts import Accounts
from jupyter_fed.runner.http import protocol_class
from jupyter_fed.runner.settings import RunnerSettings
from jupyter_fed.runner.store import RunnerStore
from jupyter_fed.wire.tls import fingerprint, is_loopback, make_certificate

log = logging.getLogger("jupyter_fed.runner")


def init_runner(home: Path, name: str, data_roots: Sequence[Path | str], *,
                hostnames: list[str] | None = None, public_url: str | None = None,
                **extra: Any) -> tuple[RunnerSettings, str]:
    """Create a runner's home, TLS certificate, admin user and admin token.

    ``data_roots`` are folders, and object-storage prefixes (``s3://bucket/prefix/``, which go to
    ``data_uri_prefixes``). The token is returned once and stored only as a hash; the
    certificate's fingerprint is what model builders pin (``runner_fingerprint(home)``).
    """
    from jupyter_fed.runner.storage import is_uri

    home = Path(home).absolute()
    if (home / "runner.json").exists():
        raise ConflictError(f"a runner already exists at {home}", "use another --home, or serve it")
    prefixes = [str(r) for r in data_roots if is_uri(str(r))]
    if prefixes:
        extra["data_uri_prefixes"] = [*extra.get("data_uri_prefixes", []), *prefixes]
    try:
        settings = RunnerSettings(
            name=name, home=home,
            data_roots=[Path(r).absolute() for r in data_roots if not is_uri(str(r))],
            **({"public_url": public_url} if public_url else {}), **extra)
    except ValidationError as exc:
        raise ConfigError("invalid runner settings: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()),
            "fix the --data-root values") from None
    settings.save()
    os.chmod(home, 0o700)
    make_certificate(home, hostnames or [])
    store = RunnerStore(settings.db_path)
    try:
        accounts = Accounts(store)
        accounts.create_user("admin", "administrator")
        _, secret = accounts.create_token("admin", None, 3650, unlimited=True,
                                          description="created by runner init")
    finally:
        store.close()
    return settings, secret


def runner_fingerprint(home: Path) -> str:
    return fingerprint((Path(home) / "cert.pem").read_text())


def serve(home: Path, host: str = "127.0.0.1", port: int = 0, ready_file: Path | None = None,
          log_level: str = "warning", insecure_http: bool = False) -> None:
    """Serve a runner over TLS until interrupted, then end the process; ``port=0`` picks a free
    port.

    ``insecure_http`` serves plain HTTP and is refused unless ``host`` is a loopback address.
    """
    import uvicorn

    from jupyter_fed.runner.app import create_app

    settings = RunnerSettings.load(home)
    if insecure_http and not is_loopback(host):
        raise PermissionDenied(f"refusing plain HTTP on {host}: it is not a loopback address",
                               "serve with TLS (the default), or bind to 127.0.0.1")
    from jupyter_fed.runner.workers import start_fork_server

    start_fork_server(settings.warmup)  # imports torch for the workers while we start
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)  # connections made before the app is up wait in the backlog
    bound = sock.getsockname()[1]
    scheme = "http" if insecure_http else "https"
    url = f"{scheme}://{host if ':' not in host else f'[{host}]'}:{bound}"

    def announce() -> None:
        if ready_file is not None:
            tmp = Path(f"{ready_file}.tmp")
            tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "name": settings.name,
                                       "fingerprint": None if insecure_http else fp}))
            tmp.replace(ready_file)
        print(f"jupyter-fed runner {settings.name!r} listening on {url}", flush=True)
        if not insecure_http:
            print(f"certificate fingerprint: {fp}", flush=True)

    fp = runner_fingerprint(settings.home)
    tls = {} if insecure_http else {"ssl_certfile": str(settings.home / "cert.pem"),
                                    "ssl_keyfile": str(settings.home / "key.pem")}
    app = create_app(settings, on_ready=announce)
    _raise_fd_limit()
    # runner_loop is uvloop: with asyncio's default loop every response here stalled ~40 ms
    # (delayed ACK), which alone would double a short round. No limit_concurrency: it counts
    # half-open connections too and would answer legitimate callers 503 while an attacker holds
    # them; the guarded protocol closes those instead (see runner/http.py).
    config = uvicorn.Config(
        app, log_level=log_level, lifespan="on", access_log=False,
        loop="jupyter_fed.runner.http:runner_loop",
        http=protocol_class(settings.header_timeout, settings.max_connections),
        timeout_keep_alive=5, h11_max_incomplete_event_size=64 * 1024,
        # Long polls would otherwise hold a stopping runner for up to a minute.
        timeout_graceful_shutdown=0.2, **tls)
    # The app and everything it imported live as long as the process: out of the collector's
    # sight, its full collections do not pause every request in flight.
    gc.freeze()
    try:
        _server_class(app.state.executor.stopping)(config).run(sockets=[sock])
    except KeyboardInterrupt:
        _exit_now(130)
    _exit_now(0)


def _server_class(on_stop: Callable[[], None]) -> type:
    """uvicorn's server, calling ``on_stop`` as soon as it starts shutting down."""
    import uvicorn

    class RunnerServer(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            on_stop()  # long polls answer now, before uvicorn cuts them off with a 500
            await super().shutdown(sockets)

    return RunnerServer


def _exit_now(code: int) -> None:
    """End the process without tearing the interpreter down object by object.

    By now the server has stopped, the store is closed and the workers are killed; what remains
    is freeing a few hundred thousand Python objects, which took ~0.8 s of a 1 s stop and
    achieves nothing. Logs and standard streams are flushed first.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _raise_fd_limit() -> None:
    """Use the hard limit on open files: each connection, even a hostile one, holds one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY
                                                        else max(soft, 65536), hard))
        except (ValueError, OSError):  # pragma: no cover - a container may forbid it
            pass
