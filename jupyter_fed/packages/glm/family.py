"""glm's exponential families and links, for other packages (vfl_glm): the public face of
:mod:`._family`."""

from __future__ import annotations

from jupyter_fed.packages.glm._family import (
    check_target,
    deviance,
    inverse_link,
    link,
    metrics,
    score_weights,
    valid_mean,
    variance,
)

__all__ = ["check_target", "deviance", "inverse_link", "link", "metrics", "score_weights",
           "valid_mean", "variance"]
