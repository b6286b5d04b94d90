"""Runner certificates and fingerprint pinning.

A runner makes a self-signed certificate at ``runner init``; model builders learn its SHA-256
fingerprint out of band (printed by the runner, or inside an invitation). The coordinator then
trusts exactly that certificate: no CA, no trust on first use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import socket
import ssl
from pathlib import Path

from jupyter_fed.errors import AuthError, RunnerUnavailable


def fingerprint(cert_pem: str | bytes) -> str:
    """``sha256:`` + hex digest of the certificate's DER bytes (what browsers show)."""
    pem = cert_pem.decode() if isinstance(cert_pem, bytes) else cert_pem
    der = ssl.PEM_cert_to_DER_cert(pem)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def make_certificate(folder: Path, hostnames: list[str], days: int = 825) -> str:
    """Write ``cert.pem`` and ``key.pem`` (mode 0600) for the runner; returns the fingerprint."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys([*hostnames, "localhost", "127.0.0.1", "::1"]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0] if hostnames
                                            else "jupyter-fed-runner")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    key_path = folder / "key.pem"
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(pem)
    return fingerprint(pem)


def pinned_context(host: str, port: int, expected: str, timeout: float = 5.0) -> ssl.SSLContext:
    """An SSL context that accepts only the certificate whose fingerprint is ``expected``.

    Blocking (one TLS handshake to read the certificate): call it off the event loop.
    """
    try:
        pem = ssl.get_server_certificate((host, port), timeout=timeout)
    except (OSError, ssl.SSLError) as exc:
        raise RunnerUnavailable(f"could not reach {host}:{port} over TLS: {type(exc).__name__}",
                                "check that the runner is up and serves HTTPS") from None
    got = fingerprint(pem)
    if got.lower() != expected.lower():
        raise AuthError(f"the runner at {host}:{port} presented a certificate with fingerprint "
                        f"{got}, not the pinned {expected}",
                        "refusing the connection; confirm the fingerprint with the custodian")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # identity is the pinned certificate itself, not a name in it
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=pem)
    return ctx


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback
                       for a in socket.getaddrinfo(host, None))
        except OSError:
            return False
