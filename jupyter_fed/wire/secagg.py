"""The messages of secure aggregation between coordinator and runner, validated on both ends.

A secure step is four exchanges, each an ordinary task (same routes, tokens, scopes, dataset
policies and audit as any step); the three built-in steps need no package code:

1. ``secagg.keys`` (:class:`KeysParams` → :class:`KeysAnswer`): each client makes two X25519
   key pairs (one to seal shares, one to agree masks) and a self-mask seed, and returns the
   public keys.
2. ``secagg.shares`` (:class:`SharesParams` → :class:`SharesAnswer`): given every client's
   public keys, each splits its seed and its masking key (Shamir, ``threshold`` of ``n``) and
   returns one sealed share per peer, for the coordinator to relay.
3. the package's own step, with :class:`MaskParams` under ``params["_secagg"]``: the runner
   opens the shares addressed to it, runs the step, then masks the named tensors before they
   leave (``uint64`` arrays under the same names with a last axis of ``limbs`` words, plus
   ``secagg:*`` counters).
4. ``secagg.unmask`` (:class:`UnmaskParams` → :class:`UnmaskAnswer`): given who sent a masked
   vector, each survivor reveals its shares of the survivors' seeds and of the dropped clients'
   masking keys — never both kinds for one peer.

Plans call secure steps again and again among the same clients (rounds, tree levels), so steps 1
and 2 of the next one ride on steps 3 and 4 of this one, under ``params["_secagg_next"]``
(:data:`NEXT`): the masked step also makes the next step's keys (:class:`KeysParams`), the unmask
step also seals the next step's shares (:class:`SharesParams`, the roster being the survivors'
new keys); each answer carries the result under the same key of its outputs. A runner that
cannot make them leaves them out, and the next step agrees its keys in exchanges of their own.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["BUILTIN_STEPS", "CLIPPED", "EXAMPLES", "KEYS", "MASKED_PREFIX", "NEXT", "PARAM",
           "SHARES", "UNMASK", "KeysAnswer", "KeysParams", "MaskParams", "Member",
           "SharesAnswer", "SharesParams", "UnmaskAnswer", "UnmaskParams"]

KEYS, SHARES, UNMASK = "secagg.keys", "secagg.shares", "secagg.unmask"
BUILTIN_STEPS = (KEYS, SHARES, UNMASK)
"""Steps every runner offers for every package: they read no rows."""
PARAM = "_secagg"
"""The key of a package step's params that asks the runner to mask its result."""
NEXT = "_secagg_next"
"""The key of the next secure step's keys or shares riding on this one (module doc), in a
step's params and in its answer's outputs."""
MASKED_PREFIX = "secagg:"
"""Masked counters travel as tensors named with this prefix (never a package's name)."""
EXAMPLES, CLIPPED = "secagg:num_examples", "secagg:clipped"
"""The example count (with ``scale_by_examples``) and the number of clipped values, summed
securely like the tensors, so the coordinator learns only their totals."""

MAX_MEMBERS = 1000
Label = Annotated[str, Field(min_length=1, max_length=300, pattern=r"^[^\x00-\x1f]+$")]
"""A client's label in the round (the coordinator's client id)."""
RoundId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,240}$")]
Key = Annotated[str, Field(min_length=44, max_length=44)]
"""A 32-byte X25519 public key, base64."""
Sealed = Annotated[str, Field(min_length=1, max_length=400)]
"""One sealed share, base64."""
Share = Annotated[str, Field(min_length=24, max_length=24)]
"""One 16-byte Shamir share, base64."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeysParams(_Model):
    """Which secure-aggregation round, and which client of it this runner is."""

    id: RoundId
    client: Label


class KeysAnswer(_Model):
    c_pk: Key = Field(description="public key that seals shares sent to this client")
    s_pk: Key = Field(description="public key of this client's pairwise masks")


class Member(KeysAnswer):
    client: Label


class SharesParams(KeysParams):
    threshold: int = Field(ge=2, le=MAX_MEMBERS)
    roster: list[Member] = Field(min_length=2, max_length=MAX_MEMBERS,
                                 description="every client that sent keys, in mask order")

    @model_validator(mode="after")
    def _distinct(self) -> SharesParams:
        labels = [m.client for m in self.roster]
        keys = [k for m in self.roster for k in (m.c_pk, m.s_pk)]
        if len(set(labels)) != len(labels) or len(set(keys)) != len(keys):
            raise ValueError("roster: every client and every key must appear once")
        if self.threshold > len(self.roster):
            raise ValueError("threshold: larger than the roster")
        return self


class SharesAnswer(_Model):
    ciphertexts: dict[Label, Sealed] = Field(description="peer → its sealed shares")


class MaskParams(KeysParams):
    shared: list[Label] = Field(min_length=2, max_length=MAX_MEMBERS,
                                description="clients whose shares were relayed: the ones to "
                                "mask with")
    ciphertexts: dict[Label, Sealed] = Field(description="sender → its sealed shares for this "
                                             "client")
    tensors: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=1,
                                                                              max_length=10_000)
    clip: float = Field(gt=0, allow_inf_nan=False)
    precision: float = Field(gt=0, allow_inf_nan=False)
    scale_by_examples: bool = False
    limbs: int = Field(2, ge=1, le=2, description="64-bit words a value: 1 when the sum fits "
                       "in 63 bits, else 2 (a 95-bit fixed point)")

    @model_validator(mode="after")
    def _consistent(self) -> MaskParams:
        if len(set(self.shared)) != len(self.shared) or len(set(self.tensors)) != len(self.tensors):
            raise ValueError("shared and tensors must not repeat a name")
        if any(t.startswith(MASKED_PREFIX) for t in self.tensors):
            raise ValueError(f"tensors: names starting with {MASKED_PREFIX!r} are reserved")
        return self


class UnmaskParams(KeysParams):
    survivors: list[Label] = Field(min_length=2, max_length=MAX_MEMBERS,
                                   description="clients whose masked vectors are in the sum")


class UnmaskAnswer(_Model):
    index: int = Field(ge=1, le=MAX_MEMBERS, description="this client's Shamir share index")
    self_shares: dict[Label, list[Share]] = Field(description="survivor → share of its seed")
    key_shares: dict[Label, list[Share]] = Field(description="dropped client → shares of its "
                                                 "masking key")
