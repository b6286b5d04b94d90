"""The metrics figure shows what it claims: a baseline per panel, no invisible legend entries."""

from __future__ import annotations

from jupyter_fed.client.metrics import SessionMetrics


def _metrics(same: bool) -> SessionMetrics:
    fed = [{"loss": 0.7, "roc_auc": 0.5}, {"loss": 0.5, "roc_auc": 0.8}]
    clients = [{c: {"test_loss": m["loss"] + (0 if same else i / 10),
                    "test_roc_auc": m["roc_auc"], "test_num_examples": 100}
                for i, c in enumerate(("a/x", "b/y"))} for m in fed]
    return SessionMetrics({"session_id": "s1", "federated_metrics": fed, "client_metrics": clients,
                           "latest_global_model_federated_loss": 0.5})


def _labels(fig) -> list[list[str]]:
    return [[line.get_label() for line in ax.get_lines()] for ax in fig.axes]


def test_clients_scoring_one_shared_test_set_are_said_once_not_drawn() -> None:
    fig = _metrics(same=True).plot(baseline={"loss": [0.7, 0.45], "roc_auc": [0.5, 0.85]},
                                   title="FFNet 15→16→2")

    assert _labels(fig) == [["federated", "centralized"], ["federated", "centralized"]]
    assert "shared test set" in fig.get_supxlabel()
    assert fig.get_suptitle() == "FFNet 15→16→2"


def test_clients_with_their_own_test_sets_keep_their_curves() -> None:
    fig = _metrics(same=False).plot()

    assert _labels(fig)[0] == ["a/x", "b/y", "federated"]
    assert fig.get_supxlabel() == ""
    assert fig.get_suptitle() == "session s1"
