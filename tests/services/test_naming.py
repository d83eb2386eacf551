"""One name per version, and what every metric was computed on (issue 17)."""

from __future__ import annotations

import sys
from pathlib import Path

from services_helpers import SAMPLE_DIR

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stub_versions import register_stub_version  # noqa: E402

from turbofan_desktop.registry.records import TrainingProvenance, TrainingSource, ValidationSet  # noqa: E402
from turbofan_desktop.services import Workspace, naming  # noqa: E402
from turbofan_desktop.services.data import load_dataset  # noqa: E402


def test_names_training_data_and_metric_data(tmp_path):
    with Workspace.open(tmp_path / "registry") as ws:
        train = load_dataset(ws, SAMPLE_DIR / "train_FD001.txt")
        test = load_dataset(ws, SAMPLE_DIR / "test_FD001.txt")
        record = register_stub_version(
            ws.registry,
            plugin="transformer",
            target="*",
            lineage=train.lineage,
            provenance=TrainingProvenance(
                source=TrainingSource(
                    str(SAMPLE_DIR / "train_FD001.txt"), None, None, None, "cmapss", None, 100
                ),
                validation=ValidationSet("val", 20, "heldout"),
            ),
            metrics={"rul_rmse": 6.84},
            validation_performed=True,
            validation_metrics={"rul_rmse": 6.84},
            validation_data_hash="heldout",
        )
        assert naming.version_name(record) == f"transformer/* v1 (#{record.id})"
        short = train.file_sha256[:8]
        assert naming.trained_on(record).text == f"train_FD001.txt ({short})"

        assert naming.data_description(ws, record, "heldout").text == "held-out units of train_FD001.txt"
        assert naming.data_description(ws, record, "never-seen").text == "data never-se"
        ws.registry.record_dataset(test.lineage)  # as validation does before it stores metrics
        on_test = naming.data_description(ws, record, test.data_hash)
        assert on_test.kind == naming.FILE and on_test.text == f"test_FD001.txt ({test.file_sha256[:8]})"
        # a cut of the training file by its split is the held-out units, whatever its hash
        val = train.subset(train.units[-3:], note="val split (seed 0)")
        ws.registry.record_dataset(val.lineage)
        assert naming.data_description(ws, record, val.data_hash).kind == naming.HELD_OUT

        figure = naming.key_figure(ws, record)
        assert figure["name"] == "rul_rmse" and figure["data"].text == "held-out units of train_FD001.txt"
        record = ws.registry.record_validation(
            record.id, metrics={"rul_rmse": 14.33}, data_hash=test.data_hash
        )
        view = naming.overview(ws, record)
        assert view["key_metric"]["value"] == 14.33
        assert view["key_metric"]["data"]["text"].startswith("test_FD001.txt (")
        assert view["trained_on"]["file"] == "train_FD001.txt"
        history = ws.registry.metric_history(record.id)
        assert naming.history_data(ws, record, history) == [
            "held-out units of train_FD001.txt",
            on_test.text,
        ]
