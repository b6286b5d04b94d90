"""The data custodian's service: one per silo, next to the data, enforcing its privacy policy."""

from __future__ import annotations

__all__ = ["RunnerSettings", "create_app", "default_home", "init_runner", "serve"]


def __getattr__(name: str) -> object:
    # FastAPI and uvicorn load only when a runner is actually built or served; pydantic (via the
    # settings) only when asked for, so a worker process starts importing torch at once.
    if name in ("RunnerSettings", "default_home"):
        from jupyter_fed.runner import settings as _settings
        return getattr(_settings, name)
    if name == "create_app":
        from jupyter_fed.runner.app import create_app
        return create_app
    if name in ("init_runner", "serve"):
        from jupyter_fed.runner import process as _process
        return getattr(_process, name)
    raise AttributeError(name)
