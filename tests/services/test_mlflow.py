"""MLflow against a real tracking server (SQLite backend, local artifacts) started here on a free port:
export + register, the pyfunc model in a fresh process, import back, live tracking, a server that is down.
Skipped without the ``[mlflow]`` extra."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from services_helpers import TINY, require_plugin

from turbofan_desktop.cli import main
from turbofan_desktop.config import load_settings
from turbofan_desktop.services import Workspace
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.inference import detect, forecast, predict_rul
from turbofan_desktop.services.training import TrainRequest, train

mlflow = pytest.importorskip("mlflow", reason="MLflow is not installed (pip install '.[mlflow]')")

from turbofan_desktop.services.mlflow_export import EXPERIMENT, export_version  # noqa: E402
from turbofan_desktop.services.mlflow_pyfunc import result_frame  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).with_name("mlflow")), "server",
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log = open(folder / "server.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(uri + "/health", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        "mlflow server did not start:\n" + (folder / "server.log").read_text()[-3000:]
                    )
                time.sleep(1)
        yield uri
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, fd001_small):
    require_plugin("telemanom")
    require_plugin("transformer")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TURBOFAN_TORCH_THREADS", "1")
        ws = Workspace.open(tmp_path_factory.mktemp("mlflow_registry"))
    versions = {}
    for plugin, targets in (("telemanom", ["s_2"]), ("transformer", None)):
        request = TrainRequest(
            plugin=plugin, data_path=fd001_small["train"], targets=targets, config=TINY[plugin]
        )
        summary = train(ws, request)
        assert summary.failed == 0, summary.to_dict()
        versions[plugin] = summary.registered[0]
    ws.registry.promote(versions["transformer"], "staging")
    yield ws, versions
    ws.close()


PREDICT = """
import json, sys
import mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(sys.argv[2])
frame = pd.read_parquet(sys.argv[3])
for task in sys.argv[5:]:
    model.predict(frame, params={"task": task}).to_json(f"{sys.argv[4]}/{task}.json", orient="split")
"""


def test_export_register_and_predict_in_plain_mlflow(server, trained, fd001_small, tmp_path):
    ws, versions = trained
    client = mlflow.MlflowClient(tracking_uri=server, registry_uri=server)
    test_data = load_dataset(ws, fd001_small["test"])
    table = tmp_path / "input.parquet"
    test_data.frame.to_parquet(table)  # what a user hands MLflow: the data table, nothing of ours
    for plugin, tasks in (("telemanom", ["anomaly"]), ("transformer", ["forecast", "rul"])):
        version_id = versions[plugin]
        result = export_version(ws, version_id, server, register=f"turbofan-{plugin}")
        record = ws.registry.get(version_id)
        run = client.get_run(result.run_id)
        assert run.data.params["seed"] == str(record.config["seed"])
        assert run.data.tags["turbofan.data_hash"] == record.lineage["data_hash"]
        assert run.data.tags["turbofan.metrics_data_hash"] == record.provenance.validation.data_hash
        assert run.data.tags["turbofan.split_seed"] == str(record.provenance.split.seed)
        assert set(record.metrics) <= set(run.data.metrics)
        assert client.get_metric_history(result.run_id, "epoch.train_loss")
        registered = client.get_model_version(f"turbofan-{plugin}", result.registered_version)
        assert registered.tags["turbofan.stage"] == record.stage
        if record.stage == "staging":
            alias = client.get_model_version_by_alias(f"turbofan-{plugin}", "staging")
            assert alias.version == result.registered_version

        out = tmp_path / plugin
        out.mkdir()
        done = subprocess.run(
            [sys.executable, "-c", PREDICT, server, result.model_uri, str(table), str(out), *tasks],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        for task in tasks:
            served = pd.read_json(out / f"{task}.json", orient="split")
            if task == "anomaly":
                app = result_frame(task, detect(ws, version_id, test_data, record_kpis=False))
            elif task == "forecast":
                app = result_frame(task, forecast(ws, version_id, test_data))
            else:
                app = result_frame(task, predict_rul(ws, version_id, test_data))
            assert len(app) > 0 or task == "anomaly"
            pd.testing.assert_frame_equal(
                served.reset_index(drop=True), app.reset_index(drop=True), check_dtype=False, rtol=1e-6
            )


def test_import_back_gives_the_same_version(server, trained, tmp_path, capsys):
    ws, versions = trained
    result = export_version(ws, versions["telemanom"], server)
    reg = tmp_path / "other_registry"
    code = main(["models", "import", "--mlflow", result.model_uri, "--tracking-uri", server,
                 "--registry", str(Workspace.open(reg).registry.home), "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    imported = json.loads(captured.out)
    original = ws.registry.get(versions["telemanom"])
    assert imported["artifact_sha256"] == original.artifact_sha256
    assert (imported["plugin"], imported["target"], imported["config"]) == (
        original.plugin, original.target, original.config,
    )  # fmt: skip
    assert imported["lineage"]["data_hash"] == original.lineage["data_hash"]
    assert imported["extra"]["split"] == original.provenance.to_dict()["split"]


def test_not_an_export_of_ours_is_refused(server, tmp_path, capsys):
    Workspace.open(tmp_path / "r").close()
    (tmp_path / "not_a_model").mkdir()
    code = main(
        ["models", "import", "--mlflow", str(tmp_path / "not_a_model"), "--registry", str(tmp_path / "r")]
    )
    assert code == 2
    assert "not a model turbofan-desktop exported" in capsys.readouterr().err


def test_training_logs_live_and_a_dead_server_only_warns(server, fd001_small, tmp_path, monkeypatch, caplog):
    require_plugin("telemanom")
    request = TrainRequest(
        plugin="telemanom", data_path=fd001_small["train"], targets=["s_2"], config=TINY["telemanom"]
    )
    monkeypatch.setenv("TURBOFAN_MLFLOW_TRACKING_URI", server)
    with Workspace.open(tmp_path / "live", settings=load_settings()) as ws:
        version_id = train(ws, request).registered[0]
    client = mlflow.MlflowClient(tracking_uri=server)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`turbofan.version_id` = '{version_id}'"
    )
    live = [r for r in runs if r.data.tags.get("turbofan.run_id")]
    assert live and live[0].info.status == "FINISHED"
    assert client.get_metric_history(live[0].info.run_id, "epoch.train_loss")
    assert "prediction_mse" in live[0].data.metrics

    monkeypatch.setenv("TURBOFAN_MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_free_port()}")
    with Workspace.open(tmp_path / "dead", settings=load_settings()) as ws, caplog.at_level(logging.WARNING):
        started = time.monotonic()
        summary = train(ws, request)
        assert summary.failed == 0 and summary.registered
        assert time.monotonic() - started < 120
    assert "does not answer" in caplog.text
