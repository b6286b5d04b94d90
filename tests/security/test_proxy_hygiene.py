"""What the coordinator sends to a runner: only its own bearer token, and no redirect is followed."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jupyter_fed.coordinator.runners import RunnerClient
from jupyter_fed.errors import FedError


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        _Recorder.seen.append(dict(self.headers))
        if self.path.startswith("/v1/datasets"):
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/v1/datasets")
            self.end_headers()
            return
        body = b'{"status": "ok", "name": "fake", "version": "0", "packages": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def fake_runner():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_only_the_runner_token_travels_and_redirects_are_not_followed(fake_runner, monkeypatch
                                                                       ) -> None:
    # Ambient credentials a Jupyter server process might have must not leak to a runner.
    monkeypatch.setenv("JUPYTER_TOKEN", "jupyter-secret")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")

    async def calls() -> FedError:
        client = RunnerClient("fake", fake_runner, "jfr_runner_token")
        try:
            await client.health()
            with pytest.raises(FedError) as info:
                await client.datasets()  # answered with a redirect
            return info.value
        finally:
            await client.aclose()

    error = asyncio.run(calls())

    # a hello without the token, then health and datasets with it; the redirect target: never
    assert len(_Recorder.seen) == 3
    for i, headers in enumerate(_Recorder.seen):
        lowered = {k.lower(): v for k, v in headers.items()}
        assert lowered.get("authorization") == (None if i == 0 else "Bearer jfr_runner_token")
        assert "cookie" not in lowered and "x-xsrftoken" not in lowered
        assert "jupyter-secret" not in str(headers)
    assert "302" in error.message or "redirect" in error.message.lower()
