"""End-to-end service workflows on FD001 with tiny models: train, validate, apply, report, cancel."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from services_helpers import TINY, require_plugin

from turbofan_desktop.errors import DataFormatError, InsufficientDataError, NotFoundError
from turbofan_desktop.services import Workspace
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.inference import detect, forecast, load_model, predict_rul
from turbofan_desktop.services.models import training_status
from turbofan_desktop.services.naming import key_metric
from turbofan_desktop.services.reports import default_report_folder, export_report, number
from turbofan_desktop.services.training import TrainRequest, train, trainable_targets
from turbofan_desktop.services.validation import held_out_data, validate


@pytest.fixture(scope="module")
def shared(tmp_path_factory, fd001_small):
    """One registry for the module with a telemanom (s_2) and a transformer (*) version."""
    ws = Workspace.open(tmp_path_factory.mktemp("services_registry"))
    versions = {}
    for plugin, targets in (("telemanom", ["s_2"]), ("transformer", None)):
        if require_ready(plugin):
            summary = train(
                ws,
                TrainRequest(
                    plugin=plugin, data_path=fd001_small["train"], targets=targets, config=TINY[plugin]
                ),
            )
            assert summary.failed == 0, summary.to_dict()
            versions[plugin] = summary.registered[0]
    yield ws, versions
    ws.close()


def require_ready(plugin: str) -> bool:
    try:
        require_plugin(plugin)
    except pytest.skip.Exception:
        return False
    return True


def version_of(shared, plugin: str) -> int:
    require_plugin(plugin)
    return shared[1][plugin]


@pytest.mark.parametrize("plugin", ["telemanom", "transformer"])
def test_train_one_target_registers_lineage_validation_and_environment(shared, fd001_small, plugin):
    ws, _ = shared
    version_id = version_of(shared, plugin)
    record = ws.registry.get(version_id)
    assert record.status == "trained"
    assert record.target == ("s_2" if plugin == "telemanom" else "*")
    # lineage of the exact training data: the train split of the file, not the whole file
    data = load_dataset(ws, fd001_small["train"])
    split = record.provenance.split
    assert len(split.train) + len(split.val) + len(split.test) == 10 and not set(split.train) & set(split.val)
    # a RUL model keeps half of its held-out engines apart from early stopping (its test split)
    assert len(split.test) == (1 if plugin == "transformer" else 0) and len(split.train) == 8
    assert not set(split.test) & (set(split.train) | set(split.val))
    train_part = data.subset(list(split.train), note=f"train split (seed {split.seed})")
    assert record.lineage["data_hash"] == train_part.data_hash
    assert record.lineage["source"] == str(fd001_small["train"])
    assert record.lineage["num_samples"] == train_part.n_rows
    assert record.lineage["time_start"] == 1
    assert record.provenance.source.data_hash == data.data_hash
    # validated on the held-out units, metrics stored with that data's hash
    assert record.validation_performed
    assert record.validation_metrics and record.metrics == record.validation_metrics
    val_part = data.subset(list(split.val), note=f"val split (seed {split.seed})")
    assert record.validation_data_hash == val_part.data_hash
    assert all(math.isfinite(v) for v in record.metrics.values())
    assert record.history and "train_loss" in record.history[0]
    assert {"python", "numpy", "pandas", "torch"} <= set(record.library_versions)
    run = ws.registry.get_run(record.run_id)
    assert run.status == "succeeded"


def test_train_all_iterates_targets_and_continues_past_a_failure(tmp_path, fd001_small, monkeypatch):
    require_plugin("telemanom")
    require_plugin("transformer")
    from turbofan_telemanom import model as telemanom_model

    real_fit = telemanom_model.TelemanomModel.fit

    def failing_fit(self, train, val, **kwargs):
        if self.target == "s_3":
            raise InsufficientDataError("Sensor s_3 is too short for this test.")
        return real_fit(self, train, val, **kwargs)

    monkeypatch.setattr(telemanom_model.TelemanomModel, "fit", failing_fit)
    with Workspace.open(tmp_path / "reg") as ws:
        results = []
        for plugin in ("telemanom", "transformer"):
            request = TrainRequest(
                plugin=plugin,
                data_path=fd001_small["train"],
                targets=["s_2", "s_3", "s_4"],
                config=TINY[plugin],
            )
            results.append(train(ws, request))
        tele, trans = results
        assert [r.target for r in tele.results] == ["s_2", "s_3", "s_4"]
        assert tele.successful == 2 and tele.failed == 1
        failed = tele.results[1]
        assert failed.version_id is None and failed.error == "Sensor s_3 is too short for this test."
        # one model per target: distinct versions and artifacts
        ids = tele.registered
        assert len(set(ids)) == 2
        assert {ws.registry.get(i).target for i in ids} == {"s_2", "s_4"}
        assert trans.successful == 1 and [r.target for r in trans.results] == ["*"]
        assert ws.registry.get(trans.registered[0]).config["sensors"] == ["s_2", "s_3", "s_4"]
        runs = ws.registry.list_runs()
        assert sorted(r.status for r in runs) == ["failed", "succeeded", "succeeded", "succeeded"]
        summary = tele.to_dict()
        assert summary["summary"] == {"successful": 2, "failed": 1, "registered": ids, "cancelled": False}
        assert "error" in summary["results"][1] and "version_id" in summary["results"][0]


def test_trainable_targets(shared, fd001_small):
    ws, _ = shared
    data = load_dataset(ws, fd001_small["train"])
    assert trainable_targets(ws, "transformer", data) == ["*"]
    targets = trainable_targets(ws, "telemanom", data)
    assert "s_2" in targets and "s_1" not in targets  # s_1 is constant on FD001


def test_validate_held_out_and_on_a_test_file(shared, fd001_small):
    ws, _ = shared
    version_id = version_of(shared, "transformer")
    before = ws.registry.get(version_id)
    held = validate(ws, [version_id])
    assert held.validated == 1 and held.failed == 0
    outcome = held.results[0]
    # no file: the recorded held-out units, read again; for a RUL version its test units, which
    # neither fitting nor early stopping saw (training scored it on its validation units)
    test_units = held_out_data(ws, before)
    assert set(test_units.units) == set(before.provenance.split.test)
    assert outcome.data_hash == test_units.data_hash != before.validation_data_hash
    assert "rul_rmse" in outcome.metrics and math.isfinite(outcome.metrics["rul_rmse"])
    if require_ready("telemanom"):  # without a test split: the very validation units of training
        anomaly = ws.registry.get(version_of(shared, "telemanom"))
        again = validate(ws, [anomaly.id]).results[0]
        assert again.data_hash == anomaly.validation_data_hash
        for key, value in anomaly.validation_metrics.items():
            assert again.metrics[key] == pytest.approx(value, rel=1e-6, abs=1e-9)

    on_test = validate(ws, [version_id], data_path=fd001_small["test"])
    result = on_test.results[0]
    assert result.ok, result.error
    test_data = load_dataset(ws, fd001_small["test"])
    assert test_data.rul is not None
    assert result.data_hash == test_data.data_hash
    assert "rul_rmse" in result.metrics and math.isfinite(result.metrics["rul_rmse"])
    after = ws.registry.get(version_id)
    assert after.validation_data_hash == test_data.data_hash
    assert after.validation_metrics == pytest.approx(result.metrics)


def test_batch_validate_all_and_filtered(shared):
    ws, versions = shared
    if not versions:
        pytest.skip("no plugin is ready")
    everything = validate(ws)
    assert sorted(r.id for r in everything.results) == sorted(versions.values())
    assert everything.failed == 0 and everything.validated == len(versions)
    assert all(r.data_hash and r.metrics for r in everything.results)
    if "telemanom" in versions:
        only = validate(ws, plugin="telemanom", target="s_2")
        assert [r.id for r in only.results] == [versions["telemanom"]]
    with pytest.raises(NotFoundError):
        validate(ws, [987654])


def test_detect_forecast_rul_on_the_test_file(shared, fd001_small):
    ws, _ = shared
    test_data = load_dataset(ws, fd001_small["test"])
    tele = version_of(shared, "telemanom")
    detection = detect(ws, tele, test_data, units=[1, 2])
    assert detection.target == "s_2" and set(detection.units) == {1, 2}
    for unit, result in detection.units.items():
        times = set(test_data.unit_frame(unit)["cycle"])
        assert all(r.start in times and r.end in times and r.start <= r.end for r in result.anomalies)

    trans = version_of(shared, "transformer")
    fc = forecast(ws, trans, test_data, units=[3], horizon=5)
    assert list(fc.units) == [3] and fc.horizon == 5
    sensor = next(iter(fc.units[3].sensors.values()))
    last = test_data.unit_frame(3)["cycle"].max()
    assert list(sensor.time) == list(range(last + 1, last + 6))
    assert (sensor.lower <= sensor.median).all() and (sensor.median <= sensor.upper).all()

    rul = predict_rul(ws, trans, test_data)
    assert len(rul.units) == 6
    assert all(u.true_rul is not None and u.lower <= u.rul <= u.upper for u in rul.units)
    # a task the model does not offer is a one-sentence error
    with pytest.raises(Exception, match="does not offer"):
        detect(ws, trans, test_data)
    assert load_model(ws, trans)[1] is load_model(ws, trans)[1]  # cached per workspace


@pytest.mark.parametrize("plugin", ["telemanom", "transformer"])
def test_reports_html_and_pdf(shared, tmp_path, fd001_small, plugin):
    from pypdf import PdfReader

    ws, _ = shared
    version_id = version_of(shared, plugin)
    html_path = export_report(ws, version_id, "html", tmp_path / "report.html")
    text = html_path.read_text()
    assert text.count("data:image/png;base64,") >= 2  # training curve + a task plot
    for heading in ("Validation metrics", "Training curve", "Lineage", "Config", "Environment"):
        assert heading in text
    assert "http://" not in text and "https://" not in text  # self-contained
    pdf_path = export_report(ws, version_id, "pdf", tmp_path / "report.pdf", data_path=fd001_small["test"])
    reader = PdfReader(str(pdf_path))
    assert len(reader.pages) >= 3
    first = reader.pages[0].extract_text()
    assert f"(#{version_id})" in first and "Validation metrics" in first
    # page 1 says what the model is, on what data, and how good: the key figures with their data
    record = ws.registry.get(version_id)
    assert "Key figures" in first and "Trained on" in first and "train_small.txt" in first
    key_name, key_value = key_metric(record)
    assert key_name in first and number(key_value) in first
    assert "held-out units of train_small.txt" in first
    # tables in natural order (s_2 before s_11), lineage and environment at the end
    pairs = [
        (f"{m[: -len('_s_2')]}_s_2", f"{m[: -len('_s_2')]}_s_11")
        for m in record.metrics
        if m.endswith("_s_2")
    ]
    for s2, s11 in pairs:
        if s11 in record.metrics:
            assert text.index(f">{s2}<") < text.index(f">{s11}<")
    assert "matplotlib" in reader.pages[-1].extract_text()  # the environment table closes the report


def test_report_numbers_and_default_folder(tmp_path, monkeypatch):
    assert [number(v) for v in (14.3256, 0.83549, 227600.4, 20.0, 1e-5)] == [
        "14.33",
        "0.8355",
        "227,600",
        "20",
        "1e-05",
    ]
    import turbofan_desktop

    sample = Path(turbofan_desktop.__file__).resolve().parent.parent / "resources" / "sample"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_report_folder(sample) == tmp_path  # never the program's own sample folder
    (tmp_path / "Documents").mkdir()
    assert default_report_folder(None) == tmp_path / "Documents"
    assert default_report_folder(tmp_path / "gone") == tmp_path / "Documents"
    used = tmp_path / "reports"
    used.mkdir()
    assert default_report_folder(used) == used


def test_cancel_during_training_registers_nothing(tmp_path, fd001_small):
    require_plugin("telemanom")
    events = []

    def progress(job):
        events.append(job)

    def should_stop():
        return any(job.event.stage == "fit" for job in events)

    with Workspace.open(tmp_path / "reg") as ws:
        config = dict(TINY["telemanom"], epochs=5, patience=5)
        request = TrainRequest(
            plugin="telemanom", data_path=fd001_small["train"], targets=["s_2", "s_3"], config=config
        )
        summary = train(ws, request, progress=progress, should_stop=should_stop)
        assert summary.cancelled and summary.registered == []
        assert [r.cancelled for r in summary.results] == [True, True]
        assert ws.registry.list_versions() == []
        runs = ws.registry.list_runs()
        assert [r.status for r in runs] == ["cancelled"]  # the second target never started
        assert runs[0].epochs_done < 5


def test_a_file_that_fails_validation_registers_nothing(tmp_path):
    bad = tmp_path / "train_bad.txt"
    bad.write_text("1 1 0.1 0.2 100 1 2 3\n1 2 0.1 oops 100 1 2 3\n")
    with Workspace.open(tmp_path / "reg") as ws:
        with pytest.raises(DataFormatError) as caught:
            train(ws, TrainRequest(plugin="telemanom", data_path=bad, targets=["s_2"]))
        message = str(caught.value)
        assert "train_bad.txt" in message and "\n" not in message and message.endswith(".")
        assert ws.registry.list_versions() == [] and ws.registry.list_runs() == []


@pytest.mark.parametrize("plugin", ["telemanom", "transformer"])
def test_same_seed_same_data_same_metrics(tmp_path, fd001_small, plugin):
    require_plugin(plugin)
    with Workspace.open(tmp_path / "reg") as ws:
        targets = ["s_2"] if plugin == "telemanom" else None
        runs = [
            train(
                ws,
                TrainRequest(
                    plugin=plugin,
                    data_path=fd001_small["train"],
                    targets=targets,
                    config=TINY[plugin],
                    seed=3,
                ),
            )
            for _ in range(2)
        ]
        first, second = (ws.registry.get(s.registered[0]) for s in runs)
        assert first.provenance.split == second.provenance.split
        assert first.lineage["data_hash"] == second.lineage["data_hash"]
        assert first.metrics.keys() == second.metrics.keys()
        for key in first.metrics:
            assert second.metrics[key] == pytest.approx(first.metrics[key], rel=1e-5, abs=1e-8)


def test_training_status_lists_targets_and_gaps(shared, fd001_small):
    ws, versions = shared
    data = load_dataset(ws, fd001_small["train"])
    rows = training_status(ws, data)
    by_key = {(r.plugin, r.target): r for r in rows}
    if "telemanom" in versions:
        row = by_key[("telemanom", "s_2")]
        assert row.latest_id == versions["telemanom"] and row.validated
        assert by_key[("telemanom", "s_3")].versions == 0
    assert rows[-1].target == "*"


def test_in_memory_subset_trains_reports_progress_and_validates_without_a_file(tmp_path, fd001_small):
    """The GUI path: a loaded (and cut) dataset is passed in memory; validation re-reads its source."""
    require_plugin("telemanom")
    events = []
    with Workspace.open(tmp_path / "reg") as ws:
        data = load_dataset(ws, fd001_small["train"])
        part = data.subset(data.units[:6], note="chosen in the GUI")
        request = TrainRequest(
            plugin="telemanom", dataset=part, targets=["s_7", "s_8"], config=TINY["telemanom"]
        )
        summary = train(ws, request, progress=events.append)
        assert summary.successful == 2
        overall = [e.overall for e in events]
        assert overall == sorted(overall) and overall[-1] == pytest.approx(1.0)
        assert {(e.index, e.total) for e in events} == {(0, 2), (1, 2)}
        assert {e.event.stage for e in events} >= {"fit", "done"}
        record = ws.registry.get(summary.registered[0])
        assert record.lineage["units"] == len(record.provenance.split.train)
        held = validate(ws, summary.registered)
        assert held.failed == 0, [r.error for r in held.results]


def test_validation_refuses_a_changed_training_source(tmp_path, fd001_small):
    require_plugin("telemanom")
    source = tmp_path / "train_copy.txt"
    source.write_text(fd001_small["train"].read_text())
    with Workspace.open(tmp_path / "reg") as ws:
        summary = train(
            ws, TrainRequest(plugin="telemanom", data_path=source, targets=["s_2"], config=TINY["telemanom"])
        )
        version_id = summary.registered[0]
        held_units = list(ws.registry.get(version_id).provenance.split.val)
        lines = source.read_text().splitlines()
        changed = []
        for line in lines:
            fields = line.split()
            if int(fields[0]) == held_units[0] and fields[1] == "5":
                fields[6] = "999.99"  # s_2 of one held-out row
            changed.append(" ".join(fields))
        source.write_text("\n".join(changed) + "\n")
        result = validate(ws, [version_id]).results[0]
        assert result.error is not None and "train_copy.txt" in result.error and "validate" in result.error
        assert (
            ws.registry.get(version_id).validation_data_hash
            == ws.registry.get(version_id).validation_data_hash
        )


def test_all_sensors_means_every_informative_sensor(fd001_small, tmp_path):
    from turbofan_desktop.services.training import resolve_targets

    with Workspace.open(tmp_path / "reg") as ws:
        data = load_dataset(ws, fd001_small["train"])
        spec = ws.plugins.model("telemanom")
        targets = resolve_targets(
            spec, data, TrainRequest(plugin="telemanom", dataset=data, all_sensors=True)
        )
        assert targets == data.informative_sensors and "s_1" not in targets and len(targets) >= 10
        with pytest.raises(Exception, match="--all-sensors"):
            resolve_targets(spec, data, TrainRequest(plugin="telemanom", dataset=data))
