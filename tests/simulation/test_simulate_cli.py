"""``jupyter-fed simulate``: a dataset file in, a simulated session run, its metrics printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from simhelpers import frame

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jupyter_fed.cli", "simulate", *args],
                          capture_output=True, text=True, timeout=240, cwd=ROOT)


def test_simulate_reads_a_file_partitions_it_and_prints_the_metrics(tmp_path: Path) -> None:
    # Prepare
    frame(900).to_parquet(tmp_path / "rows.parquet", index=False)
    frame(300, seed=1).to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "ffnet.yaml").write_text("target: y\nmodel:\n  params: {hidden_layer_sizes: [8], "
                                         "output_size: 2}\nseed: 1\n")

    # Execute
    out = _cli("ffnet", "--dataset", str(tmp_path / "rows.parquet"), "--test",
               str(tmp_path / "test.csv"), "--config", str(tmp_path / "ffnet.yaml"),
               "--clients", "3", "--partition", "dirichlet:2", "--rounds", "2", "--json")

    # Assert
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["simulation"]["num_clients"] == 3
    assert result["simulation"]["partition"] == "dirichlet:2"
    assert len(result["federated_metrics"]) == 3
    assert 0.0 <= result["federated_metrics"][-1]["roc_auc"] <= 1.0


def test_a_bad_partition_is_one_line_and_a_usage_exit_code(tmp_path: Path) -> None:
    frame(300).to_parquet(tmp_path / "rows.parquet", index=False)

    out = _cli("ffnet", "--dataset", str(tmp_path / "rows.parquet"), "--target", "y",
               "--clients", "3", "--partition", "zipf:1")

    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "jupyter-fed: error: unknown partition 'zipf:1' — use iid, dirichlet:ALPHA (e.g. "
        "dirichlet:0.5) or column:NAME"]
