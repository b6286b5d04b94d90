"""A session as the model builder holds it in the kernel."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from jupyter_fed.client.metrics import MetricsAccessor, SessionMetrics
from jupyter_fed.errors import SessionFailed
from jupyter_fed.wire.models import TERMINAL_STATUSES as TERMINAL

if TYPE_CHECKING:
    from jupyter_fed.client._backend import Backend
    from jupyter_fed.client.client import Client
    from jupyter_fed.client.importance import FeatureImportance
    from jupyter_fed.client.influence import InfluenceScores



class Session:
    """Handle on one federated session; every property reads the coordinator's current state."""

    def __init__(self, client: Client, info: dict[str, Any]) -> None:
        self._client = client
        self.id: str = info["id"]
        self.name: str = info["name"]
        self.package: str = info["package"]
        self.notice: str = ""
        """What the session's privacy settings imply, said at creation (e.g. EDA's per-column
        epsilon); empty when there is nothing to say."""

    @property
    def _backend(self) -> Backend:
        return self._client._backend

    def info(self) -> dict[str, Any]:
        """Status, round progress, clients and configuration as a dict."""
        return self._backend.session(self.id)

    def status(self) -> str:
        """``created``, ``pending``, ``running``, ``completed``, ``failed`` or ``cancelled``."""
        return self.info()["status"]

    def start(self) -> Session:
        """Open the session for clients; returns the session so calls can be chained."""
        self._backend.start_session(self.id)
        return self

    def wait(self, timeout: float | None = None, poll: float = 1.0, raise_on_failure: bool = True,
             progress: bool = False) -> bool:
        """Block until the session ends; ``True`` when completed, ``False`` on timeout.

        Parameters
        ----------
        timeout
            Seconds to wait at most (``None``: no limit).
        poll
            Seconds between checks when a progress bar is shown.
        raise_on_failure
            Raise ``SessionFailed`` (with the coordinator's reason) if the session failed.
        progress
            Show a tqdm progress bar of rounds with the latest federated loss.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.info()["num_rounds"], desc=f"session {self.id}", unit="round")
        try:
            while True:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                step = left if bar is None else (poll if left is None else min(poll, left))
                info = self._backend.wait(self.id, step)
                if bar is not None:
                    bar.n = info["current_round"]
                    latest = self.metrics().latest()
                    bar.set_postfix({k: round(v, 4) for k, v in latest.items()
                                     if k in ("loss", "roc_auc", "r2")})
                    bar.refresh()
                if info["status"] in TERMINAL:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    return False
        finally:
            if bar is not None:
                bar.close()
        if info["status"] != "completed" and raise_on_failure:
            raise SessionFailed(f"session {self.id} {info['status']}: {info['error'] or ''}".strip(),
                                "see session.logs() for each runner's messages")
        return info["status"] == "completed"

    def wait_round(self, after_round: int, timeout: float = 30.0) -> dict[str, Any]:
        """Return the session's info as soon as a round after ``after_round`` is committed, the
        session ends, or ``timeout`` seconds pass: a live view long-polls this, never sleeps."""
        return self._backend.wait(self.id, timeout, after_round)

    @property
    def metrics(self) -> MetricsAccessor:
        """``session.metrics()``: the session's :class:`SessionMetrics` now. The reference SDK's
        metrics page also writes ``session.metrics.as_dict()``; that works too."""
        return MetricsAccessor(lambda: SessionMetrics(self._backend.metrics(self.id)))

    def influence_scores(self, all_metrics: bool = False) -> InfluenceScores:
        """Each party's dataset influence in a vertical training session (its Shapley value for
        the fall in validation loss, every round): ``.as_dict()``, ``.plot()`` (each party's
        share), ``.plot(per_round=True)`` (scores per round).

        Parameters
        ----------
        all_metrics
            ``as_dict()`` gives every round's scores rather than the overall ones.

        Raises ``ConfigError`` when the session has none (not a vertical training session,
        ``influence_score.enable`` off, no test dataset, or not finished a round yet).
        """
        from jupyter_fed.client.influence import InfluenceScores
        from jupyter_fed.errors import ConfigError

        found = InfluenceScores(self._backend.metrics(self.id), all_metrics)
        if not found:
            raise ConfigError(f"session {self.id} has no influence scores",
                              "they come with a vertical training session (splitnn, vfl_glm, "
                              "vfl_gbm) that has a test dataset and "
                              "model_config.influence_score.enable on, once its first round "
                              "is committed")
        return found

    def feature_importance_scores(self) -> FeatureImportance:
        """SHAP feature importance of a finished vertical training session that enabled
        ``feature_importance_score``: ``.as_dict()`` (``feature_importance_scores``,
        ``feature_importance_details``), ``.plot(topk=15)``, ``.plot(style="box", topk=15)``."""
        from jupyter_fed.client.importance import FeatureImportance
        from jupyter_fed.errors import ConfigError
        from jupyter_fed.wire import decode

        data, meta = self._backend.artefact_bytes(self.id)
        section = meta.get("feature_importance")
        if not section:
            raise ConfigError(f"session {self.id} has no feature importance",
                              "set model_config.feature_importance_score.enable to true in a "
                              "splitnn, vfl_glm or vfl_gbm training session; it is computed "
                              "when training ends")
        return FeatureImportance(section, decode(data))

    def rounds(self) -> list[dict[str, Any]]:
        """Per-round bookkeeping: clients, dropouts, durations, time inside local steps."""
        return self._backend.rounds(self.id)

    def model(self) -> Any:
        """The trained model (best round if ``save_best_model`` is set, else the last)."""
        from jupyter_fed.packages import get_package
        from jupyter_fed.wire import decode

        data, meta = self._backend.artefact_bytes(self.id)
        return get_package(meta["package"]).load_model()(decode(data), meta)

    def results(self) -> Any:
        """An analytics session's merged results (``EdaResults``, ``StatsResults``, …)."""
        from jupyter_fed.packages import get_package
        from jupyter_fed.wire import decode

        data, meta = self._backend.artefact_bytes(self.id)
        return get_package(meta["package"]).load_model()(decode(data), meta)

    def prediction_result(self) -> Any:
        """Where a vertical prediction session's predictions are: ``{storage_path: path}``.

        The predictions are rows, so they stay at the label party's runner; when this kernel can
        read that file the value is its path (``.as_frame()`` reads it), otherwise
        ``runner:path``, and ``.reason`` says why (see ``PredictionResult``).
        """
        from jupyter_fed.errors import ConfigError

        result = getattr(self.results(), "prediction", None)
        if result is None:
            raise ConfigError(f"session {self.id} made no predictions",
                              "create it with create_vfl_session(vfl_mode='predict', ...)")
        return result

    def cancel(self) -> None:
        """Stop the session; steps still running at the runners are cancelled there."""
        self._backend.cancel(self.id)

    def logs(self, after: int = 0) -> list[dict[str, Any]]:
        """The session's log: joins, rounds, dropouts and each runner's error messages."""
        return self._backend.logs(self.id, after)

    def __repr__(self) -> str:
        return f"<Session {self.id} {self.package} {self.name!r}>"

    def _repr_html_(self) -> str | None:
        """Status, round progress, latest metrics and clients, when a notebook shows the session."""
        from jupyter_fed.client.reprs import session_html

        return session_html(self)
