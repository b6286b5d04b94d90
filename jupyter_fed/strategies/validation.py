"""Checks a client update must pass before it may touch the global model.

The coordinator calls ``validate_update`` on every update as it arrives, so that one broken or
malicious client is rejected by name (and the round can go on without it) instead of turning the
global model into NaN or crashing the aggregation with a shape error. Strategies call it again as a
last line of defence. Messages name the client and the parameter, never data values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from jupyter_fed.errors import UpdateRejected
from jupyter_fed.strategies.base import ClientUpdate

__all__ = ["update_norm", "validate_update"]

_HINT = ("the client must train the session's current global model and report how many examples "
         "it trained on; check the client's runner and dataset")


def _names(names: Iterable[str], limit: int = 5) -> str:
    items = sorted(names)
    shown = ", ".join(repr(n) for n in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _count_problem(num_examples: object, max_examples: int | None) -> str | None:
    if isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer)):
        return f"num_examples must be an integer, got {type(num_examples).__name__}"
    if num_examples <= 0:
        return f"num_examples must be positive, got {int(num_examples)}"
    if max_examples is not None and num_examples > max_examples:
        return (f"num_examples {int(num_examples)} exceeds the {max_examples} rows registered for "
                "the client's dataset")
    return None


def _array_problem(key: str, value: object, ref: np.ndarray) -> str | None:
    if not isinstance(value, np.ndarray):
        return f"parameter {key!r} is a {type(value).__name__}, not a numpy array"
    if value.shape != ref.shape:
        return f"parameter {key!r} has shape {value.shape}, expected {ref.shape}"
    if value.dtype != ref.dtype:
        return f"parameter {key!r} has dtype {value.dtype}, expected {ref.dtype}"
    if np.issubdtype(value.dtype, np.inexact):
        bad = value.size - int(np.count_nonzero(np.isfinite(value)))
        if bad:
            return f"parameter {key!r} contains {bad} NaN or Inf value(s)"
    return None


def validate_update(update: ClientUpdate, reference: Mapping[str, np.ndarray],
                    max_examples: int | None = None) -> None:
    """Reject an update that does not fit the global model or lies about its example count.

    Parameters
    ----------
    update
        The client's update (full weights and example count).
    reference
        The current global weights: the update must have exactly these names, shapes and dtypes.
    max_examples
        Row count registered for the client's dataset; a larger ``num_examples`` would give the
        client more weight in the mean than it is entitled to. None skips this check.

    Raises
    ------
    UpdateRejected
        Naming the client and every problem found: missing or unexpected parameter names, wrong
        shape, wrong dtype, NaN or Inf values, ``num_examples`` not an integer, not positive or
        above ``max_examples``. ``details`` lists ``{"client_id", "field", "error"}`` entries.
    """
    problems: list[tuple[str, str]] = []
    count = _count_problem(update.num_examples, max_examples)
    if count:
        problems.append(("num_examples", count))
    weights = update.weights
    if not isinstance(weights, Mapping):
        problems.append(("weights", "weights must map parameter names to arrays"))
    else:
        missing = [k for k in reference if k not in weights]
        extra = [str(k) for k in weights if k not in reference]
        if missing:
            problems.append(("weights", f"missing parameter(s) {_names(missing)}"))
        if extra:
            problems.append(("weights", f"unexpected parameter(s) {_names(extra)}"))
        for key, ref in reference.items():
            if key in weights:
                problem = _array_problem(key, weights[key], np.asarray(ref))
                if problem:
                    problems.append((f"weights.{key}", problem))
    if problems:
        cid = update.client_id
        raise UpdateRejected(f"update from client {cid!r} rejected: "
                             + "; ".join(reason for _, reason in problems), _HINT,
                             details=[{"client_id": cid, "field": f, "error": r}
                                      for f, r in problems])


def update_norm(update: ClientUpdate, reference: Mapping[str, np.ndarray]) -> float:
    """L2 norm, over all parameters together, of the client's change ``weights - reference``.

    Logged per client so that an operator can spot an outlier (and choose ``clip_norm``) without
    ever seeing the weights themselves. Computed in float64.

    Raises
    ------
    UpdateRejected
        If a reference parameter is missing from the update or has another shape.
    """
    total = 0.0
    for key, ref in reference.items():
        value = update.weights.get(key) if isinstance(update.weights, Mapping) else None
        ref64 = np.asarray(ref, dtype=np.float64)
        if value is None or np.shape(value) != ref64.shape:
            raise UpdateRejected(f"update from client {update.client_id!r} rejected: parameter "
                                 f"{key!r} is missing or has the wrong shape", _HINT)
        delta = np.asarray(value, dtype=np.float64) - ref64
        total += float(np.vdot(delta, delta))
    return float(np.sqrt(total))
