"""The BFV inner products of eda_intersect, for other packages (vfl_glm's encrypted gradients):
the public face of :mod:`._he`, whose docstring states the protocol, parameters and limits."""

from __future__ import annotations

from jupyter_fed.packages.eda_intersect._he import (
    decrypt_sums,
    encrypt_fields,
    evaluate,
    new_context,
    pack,
    public_context,
    secret_bytes,
    unpack,
)

__all__ = ["decrypt_sums", "encrypt_fields", "evaluate", "new_context", "pack", "public_context",
           "secret_bytes", "unpack"]
