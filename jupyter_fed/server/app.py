"""``JupyterFedApp``: the coordinator as a Jupyter server extension.

Installed, it is enabled in every Jupyter server (``etc/jupyter/jupyter_server_config.d/
jupyter_fed.json``) and hosts the coordinator on the server's event loop, so sessions keep running
while kernels come and go. ``jupyter fed coordinator`` launches the same app headless: a Jupyter
server with only this extension.
"""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from traitlets import Dict, Float, List, TraitError, Unicode, default, validate

from jupyter_fed._version import __version__
from jupyter_fed.server.host import CoordinatorHost
from jupyter_fed.server.routes import API_PREFIX, ROUTES

__all__ = ["JupyterFedApp"]


class JupyterFedApp(ExtensionApp):
    """The jupyter-fed coordinator and its REST API inside a Jupyter server."""

    name = "jupyter_fed"
    version = __version__
    description = "Federated learning from a notebook: the coordinator and its REST API."
    extension_url = f"{API_PREFIX}/status"  # landing page of the headless coordinator
    # Headless, serve the coordinator's API and nothing else (no terminals, no Lab).
    load_other_extensions = False
    aliases = {**ExtensionApp.aliases, "state-dir": "JupyterFedApp.state_dir"}

    state_dir = Unicode(config=True, help="""
        Folder for the coordinator's database (runner connections, sessions, rounds, metrics,
        logs) and model artefacts. Sessions checkpoint here after every round and resume from it
        when the server restarts. Default: $JUPYTER_FED_STATE_DIR if set, else
        <jupyter data dir>/jupyter_fed.""")

    runners = List(Dict(), config=True, help="""
        Runners to connect when the server starts, as a list of {"name": ..., "url": ...,
        "token": ..., "fingerprint": ...} dicts ("fingerprint": the sha256:... certificate
        fingerprint the runner printed, required for https). A runner that does not answer is
        logged and skipped (add it later from the SDK). Tokens stay on the server: no API route
        returns them.""")

    round_timeout = Float(3600.0, config=True, help="""
        Seconds a federated round may take before unresponsive clients are dropped, for sessions
        created through this server that do not set their own round_timeout.""")

    max_wait = Float(30.0, config=True, help="""
        Longest time, in seconds, a GET .../sessions/{id}/wait long poll is held open before it
        answers with the session as it is; clients then poll again. Keep it below the idle timeout
        of any proxy in front of the server.""")

    event_keepalive = Float(15.0, config=True, help="""
        Seconds between keep-alive comments on an idle /events stream, so proxies do not close
        it.""")

    host: CoordinatorHost | None = None

    @default("state_dir")
    def _default_state_dir(self) -> str:
        env = os.environ.get("JUPYTER_FED_STATE_DIR")
        return env or str(Path(jupyter_data_dir()) / "jupyter_fed")

    @default("open_browser")
    def _default_open_browser(self) -> bool:
        return False  # headless: there is no page worth opening

    @validate("round_timeout", "max_wait", "event_keepalive")
    def _positive_seconds(self, proposal: Any) -> float:
        value, name = proposal["value"], proposal["trait"].name
        if not (math.isfinite(value) and value > 0):
            raise TraitError(f"JupyterFedApp.{name} must be a positive number of seconds, "
                             f"not {value!r}")
        return float(value)

    @validate("state_dir")
    def _non_empty_dir(self, proposal: Any) -> str:
        if not str(proposal["value"]).strip():
            raise TraitError("JupyterFedApp.state_dir must name a folder, not an empty string")
        return str(proposal["value"])

    @validate("runners")
    def _runner_specs(self, proposal: Any) -> list[dict[str, str | None]]:
        seen: set[str] = set()
        for i, spec in enumerate(proposal["value"]):
            missing = [k for k in ("name", "url", "token")
                       if not (isinstance(spec.get(k), str) and spec[k])]
            if missing:  # name the keys, never echo values: one of them is a secret
                raise TraitError(f"JupyterFedApp.runners[{i}] needs non-empty string "
                                 f"{', '.join(repr(k) for k in missing)}")
            if spec["name"] in seen:
                raise TraitError(f"JupyterFedApp.runners[{i}]: runner name {spec['name']!r} "
                                 "appears twice")
            seen.add(spec["name"])
            if not isinstance(spec.get("fingerprint") or "", str):
                raise TraitError(f"JupyterFedApp.runners[{i}]: 'fingerprint' must be a string")
        return [{"name": s["name"], "url": s["url"], "token": s["token"],
                 "fingerprint": s.get("fingerprint")} for s in proposal["value"]]

    def initialize_settings(self) -> None:
        """Create the coordinator's host and schedule its boot on the server's event loop."""
        assert self.serverapp is not None
        self.host = CoordinatorHost(Path(self.state_dir).expanduser(), self.runners, self.log)
        io_loop = self.serverapp.io_loop
        loop = getattr(io_loop, "asyncio_loop", None) or asyncio.get_event_loop()
        self.host.boot(loop)

    def initialize_handlers(self) -> None:
        self.handlers.extend((API_PREFIX + path, handler) for path, handler in ROUTES)

    async def stop_extension(self) -> None:
        """End event streams and stop driving sessions; they resume at the next start."""
        if self.host is not None:
            await self.host.aclose()


main = launch_new_instance = JupyterFedApp.launch_instance
