"""A runner's signed hello: proof of identity before a coordinator sends it a token.

Over HTTPS the pinned certificate is the identity. Over plain HTTP (loopback only) nothing in the
connection proves who answers, and any local service on the port would receive the bearer token
of the first request. So before its first token-bearing request the coordinator asks
``GET /v1/health?nonce=<random>``; the runner answers with its certificate and an ECDSA signature
of the nonce by the certificate's key. The coordinator checks that the certificate is the one
whose fingerprint it was given and that the signature verifies — only then does the token go out.
"""

from __future__ import annotations

import base64
import re
import secrets
from pathlib import Path

from jupyter_fed.errors import AuthError
from jupyter_fed.wire.tls import fingerprint

CONTEXT = b"jupyter-fed runner hello v1:"
"""Signed before the nonce, so a hello signature can never be replayed as anything else."""
NONCE_RE = re.compile(r"^[0-9a-f]{32,128}$")


def new_nonce() -> str:
    return secrets.token_hex(16)


def sign(key_path: Path, nonce: str) -> str:
    """The runner's signature of ``nonce`` (base64), by its TLS key."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return base64.b64encode(key.sign(CONTEXT + nonce.encode(),
                                     ec.ECDSA(hashes.SHA256()))).decode()


def verify(certificate: str, nonce: str, signature: str, expected: str) -> None:
    """Raise ``AuthError`` unless ``certificate`` has fingerprint ``expected`` and signed ``nonce``."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        got = fingerprint(certificate)
        public = x509.load_pem_x509_certificate(certificate.encode()).public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise ValueError("not an EC key")
        public.verify(base64.b64decode(signature, validate=True), CONTEXT + nonce.encode(),
                      ec.ECDSA(hashes.SHA256()))
    except (ValueError, TypeError, InvalidSignature):
        raise AuthError("the service at this address did not prove it is the runner",
                        "check the runner's address and fingerprint") from None
    if got.lower() != expected.lower():
        raise AuthError(f"the runner at this address has the certificate fingerprint {got}, not "
                        f"the expected {expected}",
                        "refusing to send it a token; confirm the fingerprint with the custodian")
