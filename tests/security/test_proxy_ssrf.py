"""Finding 3 of issue 12: the last SSRF corners of the coordinator inside the Jupyter server.

Red-team figures: ``https://[::ffff:169.254.169.254]/`` passed the link-local check (only the
pinning stopped it); ``http://127.0.0.1:<any port>`` received the runner bearer token on
``GET /v1/datasets`` and the server answered 500; an error echoed the first 200 characters of a
local service's HTML.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from jupyter_fed.coordinator import Coordinator
from jupyter_fed.coordinator.urls import check_runner_url
from jupyter_fed.demo.federation import LocalFederation, RunnerProcess
from jupyter_fed.errors import AuthError, FedError, PermissionDenied
from jupyter_fed.runner.process import runner_fingerprint

FP = "sha256:" + "ab" * 32
SECRET_HTML = "<html><title>internal admin console</title>SECRET-PAGE-CONTENT</html>"


@pytest.mark.parametrize("url", [
    "https://[::ffff:169.254.169.254]/",       # IPv4-mapped IPv6
    "https://[::ffff:a9fe:a9fe]:8765",         # the same, in hex
    "https://[64:ff9b::a9fe:a9fe]/",           # NAT64
    "https://[64:ff9b::169.254.169.254]/",
    "https://[::169.254.169.254]/",            # IPv4-compatible
    "https://[2002:a9fe:a9fe::1]/",            # 6to4
    "http://2852039166/",                      # decimal
    "https://2852039166:443/",
    "https://0251.0376.0251.0376/",            # octal
    "https://0xA9FEA9FE/",                     # hexadecimal
    "https://0xa9.0xfe.0xa9.0xfe/",
    "https://169.254.43518/",                  # shortened
    "https://[fe80::1%25eth0]/",               # link-local IPv6 with a zone
    "https://100.100.100.200/",                # a metadata service outside link-local
    "https://[fd00:ec2::254]/",
    "https://metadata.google.internal./",      # trailing dot
    "https://[::]:8765", "https://0/",
])
def test_every_spelling_of_a_metadata_or_link_local_address_is_refused(url: str) -> None:
    with pytest.raises(PermissionDenied):
        check_runner_url(url, FP)


@pytest.mark.parametrize("url", ["https://10.0.0.5:8765", "https://runner.example.org:8765",
                                 "http://127.0.0.1:8765", "http://[::1]:8765",
                                 "http://localhost:8765", "https://[2001:db8::5]:8765"])
def test_ordinary_runner_addresses_still_pass(url: str) -> None:
    check_runner_url(url, FP)


class _Service(BaseHTTPRequestHandler):
    """Some other service on a loopback port: records what it is sent, answers what it likes."""

    seen: list[dict[str, str]] = []
    mode = "html"

    def _answer(self) -> None:
        _Service.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        if _Service.mode == "mimic" and self.path.startswith("/v1/health"):
            body, ctype, code = json.dumps({"status": "ok", "name": "fake", "version": "9",
                                            "packages": []}).encode(), "application/json", 200
        elif _Service.mode == "mimic":
            body, ctype, code = b"[]", "application/json", 200
        else:
            body, ctype, code = SECRET_HTML.encode(), "text/html", 500
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Service.seen.clear()
    _Service.mode = "html"
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _add(tmp: Path, url: str, token: str = "jfr_the-users-token", fingerprint: str | None = None,
         name: str = "target") -> tuple[dict[str, Any] | None, FedError | None]:
    async def go() -> tuple[dict[str, Any] | None, FedError | None]:
        coordinator = Coordinator(tmp)
        try:
            return await coordinator.add_runner(name, url, token, fingerprint), None
        except FedError as exc:
            return None, exc
        finally:
            await coordinator.aclose()

    return asyncio.run(go())


def test_a_local_service_never_receives_the_token_nor_gets_echoed(service, tmp_path) -> None:
    added, error = _add(tmp_path / "c", service)

    assert added is None and error is not None
    assert all("authorization" not in h for h in _Service.seen), _Service.seen
    assert "SECRET" not in error.message and "internal admin" not in error.message
    assert "SECRET" not in error.hint
    assert error.status < 500 or error.code == "runner_unavailable"


def test_a_service_that_mimics_a_runner_but_cannot_sign_gets_no_token(service, tmp_path) -> None:
    _Service.mode = "mimic"
    added, error = _add(tmp_path / "c", service, fingerprint=FP)

    assert added is None and isinstance(error, AuthError), error
    assert all("authorization" not in h for h in _Service.seen), _Service.seen


@pytest.fixture(scope="module")
def plain_runner(tmp_path_factory: pytest.TempPathFactory, data_root: Path
                 ) -> Iterator[RunnerProcess]:
    silos = {"plain": {"train": data_root / "train_silo0.parquet"}}
    with LocalFederation(tmp_path_factory.mktemp("plain"), silos, data_root, insecure_http=True,
                         warmup=False) as fed:
        yield fed.processes["plain"]


def test_a_loopback_http_runner_proves_its_identity_with_a_signed_hello(plain_runner,
                                                                        tmp_path) -> None:
    real = runner_fingerprint(plain_runner.home)

    added, error = _add(tmp_path / "a", plain_runner.url, plain_runner.token, real)
    _, impostor = _add(tmp_path / "b", plain_runner.url, plain_runner.token, FP)

    assert error is None and added is not None and added["fingerprint"] == real
    assert isinstance(impostor, AuthError) and "fingerprint" in impostor.message
