"""Which runner addresses the coordinator will talk to.

The coordinator runs inside the Jupyter server and calls URLs that users type in, so it must not
become a way to reach the server's own network neighbourhood: link-local and cloud metadata
addresses are refused outright, and plain HTTP is allowed to loopback runners only.
"""

from __future__ import annotations

import ipaddress
import socket

import httpx

from jupyter_fed.errors import ConfigError, PermissionDenied
from jupyter_fed.wire.tls import is_loopback

METADATA_HOSTS = {"metadata", "metadata.google.internal", "metadata.azure.com",
                  "instance-data", "instance-data.ec2.internal"}


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            return [ipaddress.ip_address(a[4][0].split("%")[0]) for a in socket.getaddrinfo(host, None)]
        except OSError:
            return []


def check_runner_url(url: str, fingerprint: str | None) -> httpx.URL:
    """Validate a runner URL before anything is sent to it; returns it parsed."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise ConfigError(f"{url!r} is not a URL", "use https://host:port") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"{url!r} is not an http(s) URL", "use https://host:port",
                          details=[{"field": "url", "error": "scheme must be https (or http "
                                    "on loopback)"}])
    if parsed.userinfo or parsed.query or parsed.fragment:
        raise ConfigError(f"{url!r} carries credentials, a query or a fragment",
                          "give only scheme, host and port")
    host = parsed.host.lower()
    if host in METADATA_HOSTS:
        raise PermissionDenied(f"refusing {host}: a cloud metadata address", "")
    for addr in _addresses(host):
        if addr.is_link_local or addr.is_unspecified or addr.is_multicast or \
                str(addr) in ("fd00:ec2::254",):
            raise PermissionDenied(f"refusing {host} ({addr}): link-local, metadata or "
                                   "unspecified addresses are not runners", "")
    if parsed.scheme == "http" and not is_loopback(host):
        raise PermissionDenied(f"refusing plain HTTP to {host}", "runners off this machine must "
                               "use https with a pinned certificate fingerprint")
    if parsed.scheme == "https" and not fingerprint:
        raise ConfigError(f"no certificate fingerprint for {url}",
                          "pass the fingerprint the runner printed (sha256:…), or join with an "
                          "invitation", details=[{"field": "fingerprint", "error": "required "
                                                  "for https"}])
    return parsed
