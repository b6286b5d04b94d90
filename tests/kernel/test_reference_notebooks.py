# ruff: noqa: E501 - the cells are transcribed from the documentation, long lines and all
"""The reference SDK's HFL, EDA and authentication notebook steps, as its documentation writes them.

The cells below are transcribed from ``/work/shared/reference/integrate-ai-sdk-docs.txt`` and run
in a real kernel against a headless coordinator (``jupyter fed coordinator``) and a real runner
process. The kernel finds the coordinator through ``JUPYTER_FED_URL``, as a user's configuration
would; the coordinator's token is literally ``token``, so ``connect("token")`` runs as written.

What was changed against the documentation, and nothing else:

* **package name**: ``integrate_ai_sdk`` → ``jupyter_fed`` in imports.
* **addresses, paths, names**: the task runner is the runner connected as ``taskrunner``
  (``aws_taskrunner_name``); ``base_aws_bucket`` is the runner's data root and the paths drop
  ``s3://`` (the files lie there under the same ``synthetic/…`` names). EDA: the task runner
  section's registered ``"silo0_aws"`` is ``"dataset_one"`` (the EDA section's name), and its
  ``passive_train_path`` is ``eda/dataset_two.parquet``. ``"<sessionID>"`` is the id of the
  session just trained; ``'{user_name}'`` is ``'demo-user'``. All datasets are registered: the
  task runner section's comment "client 2 uses a non-registered dataset" stays, but a runner
  here reads registered datasets only (the last cell shows an unregistered path refused).
* **typos in the documentation's code** that stop Python: ``//`` comments become ``#``, trailing
  blanks after a ``\\`` continuation go, ``print(token)p`` is ``print(token)``. The HFL section
  creates ``session`` but joins ``training_session``: the session is created as
  ``training_session``. Its metrics page's and task cells use ``json`` and ``connect`` without
  showing their imports: ``import json`` and ``from jupyter_fed.api import connect`` are added.
  The EDA section asks ``results["dataset_one"]`` for ``x10``, ``x11`` and ``x1``, which its own
  ``dataset_config`` analyses in ``dataset_two`` only: those two calls ask ``dataset_two``.

A last cell, not from the documentation, prints what the test checks.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from nbhelpers import ROOT, last_json, text

from jupyter_fed.demo.data import write_silos
from jupyter_fed.demo.federation import LocalFederation

TOKEN = "token"
RUNNER = "taskrunner"
DATA = "@DATA_ROOT@"

CONNECT = '''\
from jupyter_fed.api import connect
client = connect("token")
'''

CONFIGS = '''\
model_config = {
    "experiment_name": "test_synthetic_tabular",
    "experiment_description": "test_synthetic_tabular",
    "strategy": {
        "name": "FedAvg",       # Name of the federated learning strategy
        "params": {}
        },
    "model": {                  # Parameters specific to the model type
        "params": {
            "input_size": 15,
            "hidden_layer_sizes": [6, 6, 6],
            "output_size": 2
                   }
            },
    "balance_train_datasets": False, # Performs undersampling on the dataset
    "ml_task": {                    # Specifies the federated learning strategy
        "type": "classification",
        "params": {
            "loss_weights": None,
        },
    },
    "optimizer": {
        "name": "SGD",              # Name of the PyTorch optimizer used
        "params": {
            "learning_rate": 0.2,
            "momentum": 0.0}
            },
    "differential_privacy_params": {    # Defines the differential privacy parameters
        "epsilon": 4,
        "max_grad_norm": 7
        },
    "save_best_model": {
        "metric": "loss",           # To disable this and save the model from the last round, set to None
        "mode": "min",
    },
}

data_config = {
    "predictors": ["x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14"],
    "target": "y",
}
'''

PATHS = f'''\
aws_taskrunner_profile = "<workspace name>" # This is your workspace name. For example, if your login URL is `https://login-abc.integrateai.net/`, then your workspace name is `abc`.
aws_taskrunner_name = "{RUNNER}" # Task runner name - must match what was supplied in UI to create task runner. Example: `abcrunner`

#By default, an S3 bucket is created when you create a new task runner. This example assumes you have uploaded the files to the default bucket.
base_aws_bucket = '{DATA}'

# Example datapaths. Make sure that the data you want to work with exists in the base_aws_bucket for your task runner.
# HFL datapaths
train_path1 = f'{{base_aws_bucket}}/synthetic/train_silo0.parquet'
test_path1 = f'{{base_aws_bucket}}/synthetic/test.parquet'
train_path2 = f'{{base_aws_bucket}}/synthetic/train_silo1.parquet'
test_path2 = f'{{base_aws_bucket}}/synthetic/test.parquet'
passive_train_path = f'{{base_aws_bucket}}/eda/dataset_two.parquet'
'''

IMPORTS = '''\
import jupyter_fed
from jupyter_fed.taskgroup.taskbuilder.integrate_ai import IntegrateAiTaskBuilder
from jupyter_fed.taskgroup.base import SessionTaskGroup
from jupyter_fed.taskgroup.taskbuilder import taskrunner_context
from jupyter_fed.taskgroup.taskbuilder.integrate_ai import IntegrateAiTaskBuilder
from jupyter_fed.taskgroup.base import SessionTaskGroup

iai_tb_aws = IntegrateAiTaskBuilder(client=client,
   task_runner_id=aws_taskrunner_name)
'''

HFL_SESSION = '''\
training_session = client.create_fl_session(
    name="Testing notebook",
    description="I am testing session creation through a notebook",
    min_num_clients=2,
    num_rounds=2,
    package_name="iai_ffnet",
    model_config=model_config,
    data_config=data_config,
).start()

training_session.id
'''

HFL_TASKS = '''\
task_group = (
    SessionTaskGroup(training_session)
    .add_task(iai_tb_aws.hfl(train_path=train_path1, test_path=test_path1, use_gpu=False))\\
    .add_task(iai_tb_aws.hfl(train_path=train_path2, test_path=test_path2, use_gpu=False))
)
task_group_context = task_group.start()
'''

HFL_MONITOR = '''\
import json
# Monitor the submitted tasks

for i in task_group_context.contexts.values():
    print(json.dumps(i.status(), indent=4))

task_group_context.monitor_task_logs()
# Wait for the tasks to complete (success = True)

task_group_context.wait(60*5, 2)
'''

HFL_METRICS = "training_session.metrics().as_dict()\n"
HFL_PLOT = "fig = training_session.metrics().plot()\n"

FL_SESSION = '''\
client = connect("token")

already_trained_session_id = training_session.id

session = client.fl_session(already_trained_session_id)

# retrieve the metrics for the session as a dictionary
metrics = session.metrics.as_dict()
'''

EDA_SESSION = '''\
dataset_config = {"dataset_one": [1,"x5","x7"], "dataset_two": ["x1","x10","x11"]}

eda_session = client.create_eda_session(
    name="Testing notebook - EDA",
    description="I am testing EDA session creation through a notebook",
    data_config=dataset_config
).start()

eda_session.id
'''

EDA_TASKS = '''\
eda_task_group_context = (
        SessionTaskGroup(eda_session) \\
        # client 1 uses a registered dataset
        .add_task(iai_tb_aws.eda(dataset_name="dataset_one"))\\
        #client 2 uses a non-registered dataset
        .add_task(iai_tb_aws.eda(dataset_name="dataset_two", dataset_path=passive_train_path))\\
    .start()
    )
'''

EDA_MONITOR = '''\
for i in eda_task_group_context.contexts.values():
    print(json.dumps(i.status(), indent=4))

eda_task_group_context.monitor_task_logs()

# Wait for the tasks to complete (success = True)

eda_task_group_context.wait(60*5, 2)
'''

EDA_RESULTS = [
    "results = eda_session.results()\n",
    "results.describe()\n",
    'results["dataset_one"].describe()\n',
    'results["dataset_two"][["x10", "x11"]].uniques()\n',
    'results["dataset_one"].mean()\n',
    'results["dataset_two"]["x1"].mean()\n',
    'saved_dataset_one_hist_plots = results["dataset_two"].plot_hist()\n',
    'single_hist = results["dataset_two"]["x1"].plot_hist()\n',
]

AUTH = [
    '''\
from jupyter_fed.auth import connect_to_auth_client
from jupyter_fed.auth.scopes import Scope
import os
IAI_TOKEN = os.environ.get("IAI_TOKEN")
auth_client = connect_to_auth_client(token=IAI_TOKEN)
''',
    '''\
user_name = 'demo-user'
user = auth_client.create_user(user_name)
''',
    '''\
token = auth_client.create_token(user_id=user_name, scopes=[Scope.create_session, Scope.read_user_session])
print(token)
''',
    "auth_client.token_info(token['token'])\n",
    "auth_client.revoke_token(token['token_id'])\n",
    "auth_client.delete_user(user_name)\n",
]

CHECKS = '''\
# not from the documentation: what the test checks
try:
    iai_tb_aws.hfl(train_path=f'{base_aws_bucket}/synthetic/unregistered.parquet')
    refused = ""
except jupyter_fed.FedError as exc:
    refused = f"{exc.message} | {exc.hint}"
info = auth_client.token_info(token['token'])
print(json.dumps({
    "hfl_status": training_session.status(),
    "hfl_clients": sorted(c["datasets"]["train"] for c in training_session.info()["clients"]),
    "rounds": len(metrics["federated_metrics"]) - 1,
    "same_metrics": metrics == training_session.metrics().as_dict(),
    "eda_status": eda_session.status(),
    "eda_datasets": sorted(results),
    "eda_columns": {n: list(results[n].columns) for n in sorted(results)},
    "token_scope": token["scope"], "token_user": token["user_id"],
    "active_after_revoke": info["active"],
    "users": [u["name"] for u in auth_client.users()],
    "refused": refused,
    "figures": [type(f).__name__ for f in (fig, saved_dataset_one_hist_plots, single_hist)],
    "results_repr": repr(results),
}))
'''


def cells() -> list[str]:
    return [CONNECT, CONFIGS, PATHS, IMPORTS, HFL_SESSION, HFL_TASKS, HFL_MONITOR, HFL_METRICS,
            HFL_PLOT, FL_SESSION, EDA_SESSION, EDA_TASKS, EDA_MONITOR, *EDA_RESULTS, *AUTH,
            CHECKS]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def reference_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference's layout: ``synthetic/train_silo{0,1}.parquet``, ``synthetic/test.parquet``,
    and two EDA files."""
    root = tmp_path_factory.mktemp("bucket")
    write_silos(root / "synthetic", rows=1500, clients=2, test_rows=600)
    (root / "eda").mkdir()
    shutil.copy(root / "synthetic" / "train_silo0.parquet", root / "eda" / "dataset_one.parquet")
    shutil.copy(root / "synthetic" / "train_silo1.parquet", root / "eda" / "dataset_two.parquet")
    shutil.copy(root / "synthetic" / "test.parquet", root / "synthetic" / "unregistered.parquet")
    return root


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory, reference_data: Path
                ) -> Iterator[str]:
    """A headless coordinator (token ``token``) connected to one runner, ``taskrunner``."""
    import jupyter_fed

    tmp = tmp_path_factory.mktemp("reference-coordinator")
    silos = {RUNNER: {"train_silo0": reference_data / "synthetic" / "train_silo0.parquet",
                      "train_silo1": reference_data / "synthetic" / "train_silo1.parquet",
                      "test": reference_data / "synthetic" / "test.parquet",
                      "dataset_one": reference_data / "eda" / "dataset_one.parquet",
                      "dataset_two": reference_data / "eda" / "dataset_two.parquet"}}
    port, log = _free_port(), tmp / "coordinator.log"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
           "JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_DATA_DIR": str(tmp / "data"),
           "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    env.pop("JPY_PARENT_PID", None)
    url = f"http://127.0.0.1:{port}/"
    with LocalFederation(tmp / "runners", silos, reference_data) as fed, log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_fed.cli", "coordinator", f"--port={port}",
             "--ip=127.0.0.1", "--allow-root", f"--state-dir={tmp / 'state'}",
             f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={tmp}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log.read_text()[-2000:]
                try:
                    if httpx.get(f"{url}jupyter-fed/api/v1/status", timeout=1,
                                 headers={"Authorization": f"token {TOKEN}"}).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.1)
            # the custodian's side, done once: the coordinator holds the runner's admin token
            with jupyter_fed.connect(url, token=TOKEN) as client:
                client.add_runners(fed.runners)
            yield url
        finally:
            proc.terminate()
            proc.wait(20)


def test_the_reference_notebooks_run_as_written(run_notebook: Any, coordinator: str,
                                                reference_data: Path) -> None:
    sources = [c.replace(DATA, str(reference_data)) for c in cells()]

    nb = run_notebook(sources, timeout=300,
                      env={"JUPYTER_FED_URL": coordinator, "IAI_TOKEN": TOKEN,
                           "MPLBACKEND": "Agg"})

    errors = [text(c) for c in nb.cells if any(o["output_type"] == "error" for o in c.outputs)]
    assert not errors, errors[0]
    found = last_json(nb.cells[-1])
    assert found["hfl_status"] == "completed" and found["rounds"] == 2
    assert found["hfl_clients"] == ["train_silo0", "train_silo1"]  # resolved from the paths
    assert found["same_metrics"]
    assert found["eda_status"] == "completed"
    assert found["eda_datasets"] == ["dataset_one", "dataset_two"]
    assert found["eda_columns"] == {"dataset_one": ["x0", "x5", "x7"],
                                    "dataset_two": ["x1", "x10", "x11"]}
    assert found["token_scope"] == "create_session read_user_session"
    assert found["token_user"] == "demo-user"
    assert found["active_after_revoke"] is False
    assert "demo-user" not in found["users"]
    assert "no dataset registered at that path" in found["refused"]
    assert "dataset_one, dataset_two, test, train_silo0, train_silo1" in found["refused"]
    assert found["figures"] == ["Figure", "Figure", "Figure"]
    assert found["results_repr"].startswith("EDA Session collection of datasets")
    assert "federated_metrics" in text(nb.cells[cells().index(HFL_METRICS)])
    assert '"status"' in text(nb.cells[cells().index(HFL_MONITOR)])  # the tasks' JSON status
