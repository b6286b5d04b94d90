"""JupyterFedApp settings, the extension's entry points and its lifecycle in the server."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError

import jupyter_fed
from jupyter_fed.server.app import JupyterFedApp
from jupyter_fed.server.host import CoordinatorUnavailable

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("trait", ["round_timeout", "max_wait", "event_keepalive"])
@pytest.mark.parametrize("value", [0, -1.5, float("nan")])
def test_bad_seconds_fail_with_the_trait_name(trait: str, value: float) -> None:
    with pytest.raises(TraitError, match=f"JupyterFedApp.{trait} must be a positive"):
        JupyterFedApp(**{trait: value})


def test_bad_runner_spec_names_the_missing_key_but_never_the_token() -> None:
    spec = {"name": "silo0", "url": "http://127.0.0.1:1", "token": "s3cret"}

    with pytest.raises(TraitError, match=r"runners\[1\] needs non-empty string 'url'") as bad:
        JupyterFedApp(runners=[spec, {"name": "silo1", "token": "s3cret"}])
    with pytest.raises(TraitError, match="appears twice") as twice:
        JupyterFedApp(runners=[spec, spec])

    assert "s3cret" not in str(bad.value) + str(twice.value)


def test_state_dir_defaults_to_the_jupyter_data_dir(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.delenv("JUPYTER_FED_STATE_DIR", raising=False)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))

    assert JupyterFedApp().state_dir == str(tmp_path / "data" / "jupyter_fed")
    monkeypatch.setenv("JUPYTER_FED_STATE_DIR", str(tmp_path / "elsewhere"))
    assert JupyterFedApp().state_dir == str(tmp_path / "elsewhere")


def test_a_bad_value_in_server_config_stops_the_server_naming_the_trait(
        jp_configurable_serverapp: Any, jp_server_config: dict[str, Any],
        capsys: pytest.CaptureFixture[str]) -> None:
    config = {**jp_server_config, "JupyterFedApp": {"round_timeout": -1}}

    with pytest.raises(SystemExit):  # traitlets reports bad config and exits
        jp_configurable_serverapp(config=config)

    assert "JupyterFedApp.round_timeout must be a positive number of seconds" in capsys.readouterr().err


async def test_server_config_reaches_the_app_and_boots_the_coordinator(
        fed_app: Any, tmp_path: Path) -> None:
    coordinator = await fed_app.host.get()

    assert fed_app.round_timeout == 120.0
    assert fed_app.state_dir == str(tmp_path / "fed-state")
    assert (tmp_path / "fed-state" / "coordinator.db").exists()
    assert fed_app.host.ready and coordinator.sessions() == []


async def test_stop_extension_closes_the_coordinator(fed_app: Any) -> None:
    await fed_app.host.get()

    await fed_app.stop_extension()

    assert not fed_app.host.ready or fed_app.host._closing
    with pytest.raises(CoordinatorUnavailable):
        await fed_app.host.get()


def test_installing_enables_the_extension() -> None:
    points = jupyter_fed._jupyter_server_extension_points()
    enabled = json.loads((ROOT / "jupyter-config/server-config/jupyter_fed.json").read_text())
    shared = tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "tool"]["hatch"]["build"]["targets"]["wheel"]["shared-data"]

    assert points == [{"module": "jupyter_fed.server.app", "app": JupyterFedApp}]
    assert enabled == {"ServerApp": {"jpserver_extensions": {"jupyter_fed": True}}}
    assert shared["jupyter-config/server-config"] == "etc/jupyter/jupyter_server_config.d"
