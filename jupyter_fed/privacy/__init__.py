"""Differential-privacy mechanisms and small-count suppression, applied at the runner."""

from __future__ import annotations

from jupyter_fed.privacy.mechanisms import (
    gaussian_sigma,
    noisy_counts,
    private_bounds,
    suppress_small,
)

__all__ = ["gaussian_sigma", "noisy_counts", "private_bounds", "suppress_small"]
