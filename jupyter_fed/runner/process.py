"""Starting and stopping a runner process."""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import timedelta
from pathlib import Path

from jupyter_fed.runner.auth import ALL_SCOPES, issue_token
from jupyter_fed.runner.settings import RunnerSettings
from jupyter_fed.runner.store import RunnerStore, now

log = logging.getLogger("jupyter_fed.runner")


def init_runner(home: Path, name: str, data_roots: list[Path], **extra: object) -> tuple[RunnerSettings, str]:
    """Create a runner's home folder and its admin token; the token is returned once, never stored."""
    from jupyter_fed.errors import ConflictError

    home = Path(home).absolute()
    if (home / "runner.json").exists():
        raise ConflictError(f"a runner already exists at {home}", "use another --home, or serve it")
    settings = RunnerSettings(name=name, home=home,
                              data_roots=[Path(r).absolute() for r in data_roots], **extra)  # type: ignore[arg-type]
    settings.save()
    os.chmod(home, 0o700)
    store = RunnerStore(settings.db_path)
    try:
        _, secret = issue_token(store, "admin", list(ALL_SCOPES), now() + timedelta(days=365))
    finally:
        store.close()
    return settings, secret


def serve(home: Path, host: str = "127.0.0.1", port: int = 0, ready_file: Path | None = None,
          log_level: str = "warning") -> None:
    """Serve a runner until interrupted; ``port=0`` picks a free port, written to ``ready_file``."""
    import uvicorn

    from jupyter_fed.runner.app import create_app

    settings = RunnerSettings.load(home)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)  # connections made before the app is up wait in the backlog
    bound = sock.getsockname()[1]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{bound}"

    def announce() -> None:
        if ready_file is not None:
            tmp = Path(f"{ready_file}.tmp")
            tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "name": settings.name}))
            tmp.replace(ready_file)
        print(f"jupyter-fed runner {settings.name!r} listening on {url}", flush=True)

    app = create_app(settings, on_ready=announce)
    # loop="auto" picks uvloop: with asyncio's default loop every response here stalled ~40 ms
    # (delayed ACK), which alone would double a short round.
    config = uvicorn.Config(app, log_level=log_level, lifespan="on", access_log=False, loop="auto",
                            http="auto")
    uvicorn.Server(config).run(sockets=[sock])
