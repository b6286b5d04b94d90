"""Which runner addresses the coordinator will talk to.

The coordinator runs inside the Jupyter server and calls URLs that users type in, so it must not
become a way to reach the server's own network neighbourhood: link-local and cloud metadata
addresses are refused in every spelling an address can take — dotted, decimal (``2852039166``),
octal (``0251.0376.0251.0376``), hexadecimal, shortened (``169.254.43518``), and IPv6 forms that
carry an IPv4 address inside (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible, NAT64
``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo). Names are resolved (off the event loop, see
:func:`check_runner_address`) and every address they resolve to is checked. Plain HTTP is allowed
to loopback runners only, named by a loopback address or ``localhost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from urllib.parse import urlsplit

import httpx

from jupyter_fed.errors import ConfigError, PermissionDenied, RunnerUnavailable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_HOSTS = {"metadata", "metadata.google.internal", "metadata.azure.com",
                  "instance-data", "instance-data.ec2.internal", "metadata.packet.net",
                  "metadata.tencentyun.com"}
METADATA_ADDRESSES = {ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "169.254.169.123", "100.100.100.200", "192.0.0.192",
    "fd00:ec2::254", "fd00:ec2::23")}
"""Cloud instance-metadata services, some of which live outside the link-local ranges."""
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def literal_address(host: str) -> Address | None:
    """``host`` as an IP address if it is one in any spelling a resolver accepts, else ``None``.

    ``socket.inet_aton`` is the C library's reading of IPv4 text: it takes decimal, octal and hex
    parts and one to four of them, so ``2852039166`` and ``0251.0376.0251.0376`` are what they
    will be when connected to, whatever ``ipaddress`` thinks of them.
    """
    host = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def embedded_ipv4(addr: Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return []
    found = [a for a in (addr.ipv4_mapped, addr.sixtofour) if a is not None]
    if addr.teredo is not None:
        found.extend(addr.teredo)
    packed = addr.packed
    if any(addr in net for net in _NAT64) or (packed[:12] == bytes(12) and packed[12:] != bytes(4)
                                              and int(addr) > 1):
        found.append(ipaddress.IPv4Address(packed[12:]))
    return found


def refusal(addr: Address) -> str | None:
    """Why ``addr`` may not be a runner, or ``None`` if it may (private ranges are fine)."""
    for a in [addr, *embedded_ipv4(addr)]:
        if a in METADATA_ADDRESSES:
            return "a cloud metadata address"
        if a.is_link_local:
            return "link-local"
        if a.is_unspecified or a.is_multicast or a == ipaddress.IPv4Address("255.255.255.255"):
            return "not a host address"
    return None


def _refuse(host: str, addr: Address, why: str) -> PermissionDenied:
    return PermissionDenied(f"refusing {host} ({addr}): {why} addresses are not runners",
                            "use the runner's own address")


def check_runner_url(url: str, fingerprint: str | None) -> httpx.URL:
    """Validate a runner URL before anything is sent to it; returns it parsed.

    Needs no DNS: names are checked by :func:`check_runner_address` before the first request.
    """
    with contextlib.suppress(ValueError, TypeError):  # judged before any parser may reject it
        raw_host = urlsplit(url).hostname or ""
        if (addr := literal_address(raw_host)) is not None and (why := refusal(addr)):
            raise _refuse(raw_host, addr, why)
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise ConfigError("the runner address is not a URL", "use https://host:port") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError("the runner address is not an http(s) URL", "use https://host:port",
                          details=[{"field": "url", "error": "scheme must be https (or http "
                                    "on loopback)"}])
    if parsed.userinfo or parsed.query or parsed.fragment:
        raise ConfigError("the runner address carries credentials, a query or a fragment",
                          "give only scheme, host and port")
    host = parsed.host.lower().rstrip(".")
    if host in METADATA_HOSTS:
        raise PermissionDenied(f"refusing {host}: a cloud metadata address", "")
    addr = literal_address(host)
    if addr is not None and (why := refusal(addr)):
        raise _refuse(host, addr, why)
    if parsed.scheme == "http" and not (host == "localhost" or (addr is not None and
                                                                addr.is_loopback)):
        raise PermissionDenied(f"refusing plain HTTP to {host}", "runners off this machine must "
                               "use https with a pinned certificate fingerprint (plain HTTP "
                               "only to a loopback address or localhost)")
    if parsed.scheme == "https" and not fingerprint:
        raise ConfigError(f"no certificate fingerprint for {url}",
                          "pass the fingerprint the runner printed (sha256:…), or join with an "
                          "invitation", details=[{"field": "fingerprint", "error": "required "
                                                  "for https"}])
    return parsed


async def check_runner_address(host: str) -> None:
    """Resolve ``host`` (without blocking the event loop) and refuse it if any address is."""
    if literal_address(host) is not None:
        return  # checked already by check_runner_url
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host.strip("[]"), None,
                                                             type=socket.SOCK_STREAM)
    except OSError:
        raise RunnerUnavailable(f"the runner host {host} does not resolve",
                                "check the runner's address") from None
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if why := refusal(addr):
            raise _refuse(host, addr, why)
