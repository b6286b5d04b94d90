"""What every vertical session (splitnn, vfl_glm, vfl_gbm) checks before it runs.

A vertical session's clients are the parties of a record linkage: each names its own predictors,
one of them (the label client) the target, and their tasks carry options of their own (batch
size, where predictions go). The checks are the same whatever the model, so they live here;
a package's plan adds only its model's rules (:meth:`VerticalPlan.target_problems`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from jupyter_fed.errors import ConfigError, SessionFailed
from jupyter_fed.packages._io import Payload, SessionIO, StepResults
from jupyter_fed.packages._plan import Plan
from jupyter_fed.packages._schema import Problem, check_columns

__all__ = ["VerticalPlan"]


class VerticalPlan(Plan):
    """A plan over linked rows: ``model_config`` names the linkage (``prl_session_id``) and, for a
    prediction session, the training session (``training_session_id``) of this same package."""

    #: the package a prediction session's training session must be of
    package: ClassVar[str]
    #: ``(model_config, data_config) -> (config, data)``: the package's config parser
    parse: ClassVar[Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[Any, Any]]]
    #: ``(client, options) -> options``: the package's task-options parser
    parse_options: ClassVar[Callable[[str, dict[str, Any]], Any]]

    def __init__(self, model_config: Mapping[str, Any], data_config: Mapping[str, Any],
                 num_rounds: int = 1) -> None:
        super().__init__(model_config, data_config, num_rounds)
        self.cfg, self.data = type(self).parse(self.model_config, self.data_config)
        self.seconds: dict[str, float] = {}
        """Seconds each step took at its slowest party, summed over the session (round info)."""

    def references(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Sessions this one builds on: config field → (session id, packages it must be of)."""
        refs = {"model_config.prl_session_id": (self.cfg.prl_session_id, ("prl",))}
        if self.cfg.training_session_id:
            refs["model_config.training_session_id"] = (self.cfg.training_session_id,
                                                        (self.package,))
        return refs

    def check_client(self, client: str, datasets: Mapping[str, Mapping[str, Any]], runner: str
                     ) -> list[Problem]:
        mine = self.data.clients.get(client)
        if mine is None:
            return [Problem("data_config", f"client {client!r} is not one of the clients "
                            f"data_config names ({', '.join(self.data.clients)}); join with "
                            "client_name set to one of them")]
        problems: list[Problem] = []
        for info in datasets.values():
            where = f"{runner}/{info['name']}"
            problems += check_columns(f"data_config.{client}.predictors", mine.predictors, info,
                                      where)
            if mine.target:
                field = f"data_config.{client}.target"
                problems += check_columns(field, [mine.target], info, where)
                problems += self.target_problems(field, mine.target, info, where)
        return problems

    def target_problems(self, field: str, target: str, info: Mapping[str, Any], where: str
                        ) -> list[Problem]:
        """The model's own rules for the label client's target column (none by default)."""
        return []

    def check_options(self, client: str, options: Mapping[str, Any]) -> list[Problem]:
        try:
            found = type(self).parse_options(client, dict(options))
        except ConfigError as exc:
            return [Problem(d["field"], d["error"]) for d in exc.details or []] or \
                [Problem("options", exc.message)]
        mine = self.data.clients.get(client)
        if self.cfg.vfl_mode == "predict" and mine is not None and mine.label_client \
                and not found.storage_path:
            return [Problem(f"options[{client}].storage_path", "the label client of a "
                            "prediction session writes its predictions there: give a .csv or "
                            ".parquet path under its runner's data roots")]
        return []

    # while the session runs ---------------------------------------------------------------------
    async def _step(self, io: SessionIO, name: str, payloads: Mapping[str, Payload], rnd: int
                    ) -> StepResults:
        """One step at every party named, all of which must answer (a vertical model needs each
        party's columns)."""
        found = await io.step(name, payloads, round=rnd, min_answers=len(payloads))
        self.seconds[name] = self.seconds.get(name, 0.0) + found.slowest
        return found

    @staticmethod
    def _with_influence(per: dict[str, dict[str, Any]], outputs: Mapping[str, Any]
                        ) -> dict[str, dict[str, Any]]:
        """The round's per-client metrics with each party's influence score (its Shapley value
        for the fall in validation loss, ``client_metrics[i][party]["influence_score"]``), when
        the label party computed them; add after the federated metrics are averaged."""
        found = outputs.get("influence") or {}
        out = {c: dict(m) for c, m in per.items()}
        for client, value in (found.get("values") or {}).items():
            out.setdefault(str(client), {})["influence_score"] = float(value)
        return out

    @staticmethod
    def _importance(found: Mapping[str, tuple[Mapping[str, Any], Mapping[str, Any]]],
                    outputs: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The artefact's ``feature_importance`` section and arrays from each party's
        ``(outputs, tensors)``: mean |SHAP| per feature, and per-row values (``shap/<party>``,
        rows x features x outputs) from the parties whose policy releases them."""
        meta: dict[str, Any] = {"scores": {}, "details_released": {}, "rows": 0,
                                "outputs": list(outputs)}
        arrays: dict[str, Any] = {}
        for client, (outs, tensors) in found.items():
            summary = dict(outs.get("importance") or {})
            meta["scores"][client] = dict(summary.get("scores") or {})
            meta["details_released"][client] = bool(summary.get("details_released"))
            meta["rows"] = int(summary.get("rows", 0))
            if "shap" in tensors:
                arrays[f"shap/{client}"] = tensors["shap"]
        return meta, arrays

    def _agree(self, found: StepResults) -> dict[str, int]:
        """Every party holds the same linkage: equal row counts and digests, per role."""
        roles = sorted({r for a in found for r in (a.outputs.get("rows") or {})})
        out: dict[str, int] = {}
        for role in roles:
            seen = {(int((a.outputs.get("rows") or {}).get(role, -1)),
                     str((a.outputs.get("digests") or {}).get(role))) for a in found}
            if len(seen) != 1:
                raise SessionFailed(f"the parties' {role} datasets are not the same linkage "
                                    f"(prl session {self.cfg.prl_session_id}): their aligned rows "
                                    "differ", "give every party the datasets that session linked")
            out[role] = next(iter(seen))[0]
        return out
