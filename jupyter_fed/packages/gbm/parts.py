"""gbm's tree-growing and loss pieces, public for packages that grow the same trees from
histograms gathered another way (``vfl_gbm``: one party's plaintext and the others' decrypted
sums). Re-exported here so that gbm's private modules stay gbm's to change."""

from __future__ import annotations

from jupyter_fed.packages.gbm._grow import TINY, Grower
from jupyter_fed.packages.gbm._loss import baseline, gradients, metrics
from jupyter_fed.packages.gbm._trees import slots

__all__ = ["TINY", "Grower", "baseline", "gradients", "metrics", "slots"]
