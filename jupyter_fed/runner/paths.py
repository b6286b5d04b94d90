"""Which registered dataset a path names, for builders who write ``hfl(train_path=...)``.

The reference SDK's notebooks name data by where it lies (``train_path``, ``dataset_path``). A
runner reads only registered datasets, so a path is only ever a way of *naming* one: it is matched
against the paths the custodian registered, among the datasets the caller may see, and nothing is
read. The answer must not become an oracle for the runner's disk: a path that matches nothing the
caller may see gets one answer, byte for byte, whether the file is missing, exists unregistered,
lies outside every data root, or belongs to a dataset hidden from the caller. The path is never
echoed back.

Local paths are compared the way registration stored them (``data.resolve_under_roots``: relative
paths are taken from the first data root, ``..`` collapsed, symlinks resolved); symlinks are
followed only inside a data root, and following one costs the same whether or not it exists.
URIs (``s3://bucket/key``, ``gs://…``, ``az://…``) are compared as strings; ``file://`` URIs as the
local paths they name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from jupyter_fed.errors import NotFoundError

__all__ = ["lookup", "match_keys"]

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _local_keys(text: str, roots: Sequence[Path]) -> set[str]:
    raw = Path(text)
    if not raw.is_absolute() and roots:
        raw = roots[0] / raw
    lexical = Path(os.path.normpath(raw.absolute()))
    keys = {str(lexical)}
    real_roots = []
    for root in roots:
        try:
            real_roots.append(root.resolve())
        except (OSError, RuntimeError):
            real_roots.append(Path(os.path.normpath(root.absolute())))
    if any(lexical.is_relative_to(r) for r in (*roots, *real_roots)):
        try:  # non-strict: a missing file resolves as far as it can, an existing one fully
            keys.add(str(lexical.resolve(strict=False)))
        except (OSError, RuntimeError, ValueError):
            pass
    return keys


def match_keys(path: str, roots: Sequence[Path]) -> set[str]:
    """The strings a path is compared by: a URI as written, a local path in its stored forms."""
    text = str(path).strip()
    if not text or "\x00" in text:
        return set()
    if _URI.match(text):
        parts = urlsplit(text)
        if parts.scheme.lower() != "file":
            return {text}
        if parts.netloc not in ("", "localhost"):
            return {text}
        return _local_keys(unquote(parts.path), roots) | {text}
    return _local_keys(text, roots)


def _stored_keys(stored: str, roots: Sequence[Path]) -> set[str]:
    if _URI.match(stored):
        return match_keys(stored, roots)
    return {os.path.normpath(stored)}


def lookup(runner: str, roots: Sequence[Path], registered: Sequence[tuple[str, str]], path: str,
           visible: Collection[str]) -> dict[str, object]:
    """``{"datasets": [names]}``: the datasets at ``path`` that the caller may see.

    Parameters
    ----------
    runner
        This runner's name, for the message.
    roots
        The runner's data roots (relative paths start at the first).
    registered
        ``(name, stored path)`` of every registered dataset.
    path
        What the builder wrote: a local path or a URI.
    visible
        Names of the datasets the caller's catalog shows; no other dataset can match.

    Raises
    ------
    NotFoundError
        Nothing the caller may see is registered there; the hint lists what it may see. The same
        message whatever the reason, and without the path.
    """
    want = match_keys(path, roots)
    allowed = set(visible)
    found = sorted(name for name, stored in registered
                   if name in allowed and want & _stored_keys(stored, roots))
    if found:
        return {"datasets": found}
    names = ", ".join(sorted(allowed))
    raise NotFoundError(f"no dataset registered at that path on runner {runner!r} is available "
                        "to this token; a runner reads registered datasets only",
                        f"datasets you may use there: {names}" if names else
                        "this token sees no datasets there; ask the custodian to register the "
                        "file (and to grant it to you)")
