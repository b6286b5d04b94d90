"""Normalising identifiers before they are linked, vectorised with pyarrow (runner side).

Two parties link a person only if their normalised ids are byte for byte equal, so every step is
deterministic and applied in one canonical order (see ``config.NORMALISATIONS``). Ids of several
columns are combined by length-prefixing each part (``"5:Alice3:Doe"``), which no choice of values
can make ambiguous: ``("ab", "c")`` and ``("a", "bc")`` stay different people.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["combine", "normalise"]


def _casefold(values: pa.Array) -> pa.Array:
    """Full Unicode case folding: pyarrow's lower-casing for ASCII (where they agree), Python's
    ``str.casefold`` for the rest (``ß`` → ``ss``, which lower-casing leaves alone)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lowered = pc.utf8_lower(values)
    other = pc.invert(pc.fill_null(pc.string_is_ascii(lowered), True))
    if not pc.any(other).as_py():
        return lowered
    folded = [None if v is None else v.casefold() for v in lowered.filter(other).to_pylist()]
    return pc.replace_with_mask(lowered, other, pa.array(folded, type=lowered.type))


def normalise(values: pa.Array | pa.ChunkedArray, steps: Sequence[str]) -> pa.Array:
    """``values`` as text, with ``steps`` applied in the canonical order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_large_string(values.type):  # one text type, whatever the file stored
        values = pc.cast(values, pa.large_string())
    if "nfkc" in steps:
        values = pc.utf8_normalize(values, "NFKC")
    if "casefold" in steps:
        values = _casefold(values)
    if "trim" in steps:
        values = pc.utf8_trim_whitespace(values)
    if "collapse" in steps:
        values = pc.replace_substring_regex(values, r"\s+", " ")
    if "digits" in steps:
        values = pc.replace_substring_regex(values, r"[^0-9]", "")
    return values


def missing(values: pa.Array, missing_values: Sequence[str]) -> pa.Array:
    """True where a normalised id is null, empty, or one of ``missing_values``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = pc.fill_null(pc.equal(pc.binary_length(values), 0), True)
    if missing_values:
        out = pc.or_(out, pc.fill_null(pc.is_in(values, value_set=pa.array(list(missing_values),
                                                                           type=values.type)),
                                       False))
    return out


def combine(parts: Sequence[pa.Array]) -> pa.Array:
    """One text per row from several normalised columns, unambiguously (length-prefixed)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(parts) == 1:
        return parts[0]
    if not parts:
        raise ValueError("nothing to combine")
    text = pa.large_string()
    colon, nothing = pa.scalar(":", text), pa.scalar("", text)
    pieces = [pc.binary_join_element_wise(pc.cast(pc.binary_length(p), text), pc.cast(p, text),
                                          colon) for p in parts]
    return pc.binary_join_element_wise(*pieces, nothing)
