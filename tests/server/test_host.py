"""The coordinator's host: boot problems are logged and answered, never fatal to the server."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from jupyter_fed.server.host import CoordinatorHost, CoordinatorUnavailable

LOG = logging.getLogger("test.jupyter_fed.host")


async def test_a_failed_boot_is_logged_and_answered_with_503(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    host = CoordinatorHost(blocker / "state", log=LOG)

    host.boot(asyncio.get_running_loop())
    with pytest.raises(CoordinatorUnavailable, match="failed to start") as refused:
        await host.get()
    await host.aclose()

    assert refused.value.status == 503 and not host.ready
    assert "the coordinator failed to start" in caplog.text


async def test_a_configured_runner_that_is_down_is_skipped(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    ghost = {"name": "ghost", "url": "http://127.0.0.1:9", "token": "s3cret-token"}
    host = CoordinatorHost(tmp_path / "state", [ghost], log=LOG)

    host.boot(asyncio.get_running_loop())
    coordinator = await host.get()
    runners = await coordinator.runners()
    await host.aclose()
    await host.aclose()  # idempotent: the server may stop an extension twice

    assert runners == []
    assert "'ghost'" in caplog.text and "s3cret" not in caplog.text
