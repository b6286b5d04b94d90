"""``data_config`` of prl, in the reference SDK's shape plus the protocol and normalisation::

    data_config = {
        "clients": {
            "active_client": {"id_columns": ["id"]},
            "passive_client": {"id_columns": ["patient_id"],
                               "normalise": {"patient_id": ["trim", "casefold"]}},
        },
        "protocol": "keyed_hash",          # or "psi" (two parties)
    }

The client names are the names the tasks join with (``tb.prl(..., client_name=...)``) and that
later vertical sessions use. ``clients`` may be left out: every other top-level key is then a
client. Each client lists its ``id_columns`` — one, or several that together identify a person
(combined in the order given, so the i-th column of one party corresponds to the i-th of the
other) — and how to normalise each before linking:

``nfkc``
    Unicode NFKC (full-width digits and letters, ligatures, compatibility forms);
``casefold``
    full Unicode case folding (``Straße`` and ``STRASSE`` agree);
``trim``
    leading and trailing white space removed; ``collapse``: runs of white space become one space;
``digits``
    every character but 0-9 removed (phone numbers written ``+1 (555) 010-0199``).

They apply in that order whatever order is written, so two parties that name the same steps
always agree. A value that is empty after normalisation, or listed in ``missing_values``, is a
missing id: its row never links. ``backend`` (the reference's ``{"name": "dask"}``) is accepted and
ignored: each runner reads a dataset with the backend its custodian registered it with.

``fuzzy`` (keyed-hash protocol, two parties) adds approximate linkage of ``fuzzy_columns``
(names): see :mod:`jupyter_fed.packages.prl._bloom`. It reveals more than exact linkage.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from jupyter_fed.packages._config import parse_config

__all__ = ["NORMALISATIONS", "ClientIds", "FuzzyConfig", "PRLData", "parse"]

Step = Literal["nfkc", "casefold", "trim", "collapse", "digits"]
NORMALISATIONS: tuple[str, ...] = ("nfkc", "casefold", "trim", "collapse", "digits")
"""Normalisation steps, in the order they apply."""
RESERVED = ("clients", "protocol", "fuzzy", "psi_threads")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ClientIds(_Strict):
    """One party: which columns identify a person, and how to normalise them."""

    id_columns: list[str] = Field(default_factory=list, max_length=16)
    normalise: dict[str, list[Step]] | list[Step] = Field(
        default_factory=dict, validation_alias=AliasChoices("normalise", "normalize"),
        description="per column (or one list for every id and fuzzy column)")
    missing_values: list[str] = Field(default_factory=list, max_length=100)
    fuzzy_columns: list[str] = Field(default_factory=list, max_length=8)
    backend: dict[str, Any] | str | None = None

    @model_validator(mode="after")
    def _columns(self) -> ClientIds:
        if not self.id_columns and not self.fuzzy_columns:
            raise ValueError("id_columns must name at least one column")
        named = [*self.id_columns, *self.fuzzy_columns]
        if len(set(named)) < len(named):
            raise ValueError("a column is listed twice in id_columns / fuzzy_columns")
        if isinstance(self.normalise, dict):
            stray = sorted(set(self.normalise) - set(named))
            if stray:
                raise ValueError(f"normalise names {', '.join(map(repr, stray))}, which is not "
                                 "one of the id_columns or fuzzy_columns")
        return self

    def steps(self, column: str) -> list[str]:
        """The normalisation of ``column``, in the canonical order."""
        chosen = self.normalise if isinstance(self.normalise, list) else \
            self.normalise.get(column, [])
        return [s for s in NORMALISATIONS if s in chosen]


class FuzzyConfig(_Strict):
    """Approximate linkage of name-like columns by Bloom-filter encodings (Dice similarity)."""

    threshold: float = Field(0.8, gt=0, le=1, description="Dice similarity at or above which "
                             "two records link")
    bits: int = Field(1024, ge=64, le=8192, description="bits of each Bloom filter")
    hashes: int = Field(20, ge=1, le=64, description="bit positions set per n-gram")
    ngram: int = Field(2, ge=1, le=4, description="characters per n-gram")
    max_pairs: int = Field(50_000_000, ge=1, description="candidate pairs compared at most; "
                           "more is refused (block on an exact id column)")

    @field_validator("bits")
    @classmethod
    def _whole_words(cls, v: int) -> int:
        if v % 64:
            raise ValueError("must be a multiple of 64")
        return v


class PRLData(_Strict):
    """The prl ``data_config`` (``num_rounds`` is ignored: a linkage is one round)."""

    clients: dict[str, ClientIds] = Field(min_length=2, max_length=32)
    protocol: Literal["keyed_hash", "psi"] = "keyed_hash"
    fuzzy: FuzzyConfig | None = None
    psi_threads: int | None = Field(None, ge=1, le=16, description="psi: threads per party for "
                                    "the elliptic-curve work (default: the cores available, "
                                    "at most 4)")

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        """``{client: {...}, "protocol": ...}`` without a ``clients`` section."""
        if isinstance(data, dict) and "clients" not in data:
            clients = {k: v for k, v in data.items() if k not in RESERVED}
            return {**{k: v for k, v in data.items() if k in RESERVED}, "clients": clients}
        return data

    @model_validator(mode="after")
    def _agree(self) -> PRLData:
        parties = list(self.clients.values())
        widths = {len(c.id_columns) for c in parties}
        if len(widths) > 1:
            raise ValueError("every client must list the same number of id_columns (they are "
                             "combined in order: the i-th of one party matches the i-th of another)")
        fuzzy = {len(c.fuzzy_columns) for c in parties}
        if self.fuzzy is None and fuzzy != {0}:
            raise ValueError("fuzzy_columns need a 'fuzzy' section (threshold, bits, …)")
        if self.fuzzy is not None:
            if len(fuzzy) > 1 or 0 in fuzzy:
                raise ValueError("with 'fuzzy', every client lists the same number of "
                                 "fuzzy_columns (at least one)")
            if self.protocol != "keyed_hash" or len(parties) != 2:
                raise ValueError("fuzzy linkage links two parties with the keyed_hash protocol")
        if self.protocol == "psi" and len(parties) != 2:
            raise ValueError("the psi protocol links exactly two parties (use keyed_hash for more)")
        return self


def parse(data_config: dict[str, Any] | None) -> PRLData:
    """Validate a prl ``data_config``; a bad field raises ``ConfigError`` naming it."""
    return parse_config(PRLData, data_config, "data_config")
