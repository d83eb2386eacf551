"""The ``pyfunc`` flavour of an exported version: plain MLflow predicts with it from a pandas frame.

``mlflow.pyfunc.load_model(uri).predict(df)`` reads ``df`` (one row per unit and time step: a unit
column, a time column, the sensors, as a data file of the app holds them) through the app's own
Parquet reader, loads the version's artifact through its plugin and answers the task named by the
``task`` parameter (default: the model's first task):

- ``anomaly``: one row per anomalous range: ``unit``, ``start``, ``end``, ``score``, ``direction``;
- ``forecast``: one row per unit, sensor and future step: ``unit``, ``sensor``, ``time``, ``median``,
  ``lower``, ``upper``;
- ``rul``: one row per unit: ``unit``, ``rul``, ``lower``, ``upper``.

This module imports without MLflow (the app imports every module of itself in a test and in the frozen
build); the MLflow class is made on first use by :func:`model_class` (the ``[mlflow]`` extra).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

ARTIFACT = "artifact"  # the version's artifact folder, as the registry stores it
RECORD = "record"  # the version's record (``models show --json``), for predict and for import
TASK_COLUMNS = {
    "anomaly": ["unit", "start", "end", "score", "direction"],
    "forecast": ["unit", "sensor", "time", "median", "lower", "upper"],
    "rul": ["unit", "rul", "lower", "upper"],
}


def frame_to_dataset(frame: pd.DataFrame) -> Any:
    """``frame`` read as the app reads a Parquet file of the same table."""
    from turbofan_desktop.data import read_dataset

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.parquet"
        from turbofan_desktop.data.dataset_file import _fastparquet

        _fastparquet().write(str(path), frame.reset_index(drop=True), write_index=False)
        return read_dataset(path)


def load_version_model(artifact_dir: Path, record: dict[str, Any], threads: int = 1) -> tuple[Any, Any]:
    """(spec, model) of an exported version, loaded through its plugin."""
    from turbofan_desktop.plugins.contract import build_config
    from turbofan_desktop.plugins.manager import get_plugin_manager

    spec = get_plugin_manager().model(record["plugin"])
    known = {row["name"] for row in spec.schema()}
    config = build_config(spec.config_class, {k: v for k, v in record["config"].items() if k in known})
    return spec, spec.load(Path(artifact_dir), config=config, target=record["target"], threads=threads)


def result_frame(task: str, result: Any) -> pd.DataFrame:
    """A task's result as the flat table ``predict`` returns."""
    rows: list[dict[str, Any]] = []
    if task == "anomaly":
        for unit, detection in result.units.items():
            for r in detection.anomalies:
                rows.append(
                    {
                        "unit": unit,
                        "start": r.start,
                        "end": r.end,
                        "score": float(r.score),
                        "direction": r.direction,
                    }
                )
    elif task == "forecast":
        for unit, unit_forecast in result.units.items():
            for sensor, f in unit_forecast.sensors.items():
                for i, time in enumerate(f.time):
                    rows.append(
                        {
                            "unit": unit,
                            "sensor": sensor,
                            "time": time.item() if hasattr(time, "item") else time,
                            "median": float(f.median[i]),
                            "lower": float(f.lower[i]),
                            "upper": float(f.upper[i]),
                        }
                    )
    else:
        for u in result.units:
            rows.append(
                {"unit": u.unit, "rul": float(u.rul), "lower": float(u.lower), "upper": float(u.upper)}
            )
    return pd.DataFrame(rows, columns=TASK_COLUMNS[task])


def run_task(model: Any, task: str, dataset: Any) -> Any:
    if task == "anomaly":
        return model.detect(dataset)
    if task == "forecast":
        return model.forecast(dataset)
    return model.predict_rul(dataset)


def model_class() -> type:
    """The ``mlflow.pyfunc.PythonModel`` subclass (made here so importing this module needs no MLflow;
    MLflow pickles it by value with the model, its helpers by reference to this module)."""
    import mlflow.pyfunc

    class TurbofanModel(mlflow.pyfunc.PythonModel):
        """A registry version as an MLflow python model (see the module docstring)."""

        def load_context(self, context: Any) -> None:
            self.record = json.loads(Path(context.artifacts[RECORD]).read_text(encoding="utf-8"))
            self.spec, self.model = load_version_model(Path(context.artifacts[ARTIFACT]), self.record)

        def predict(
            self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
        ) -> pd.DataFrame:
            task = (params or {}).get("task") or self.spec.tasks[0]
            if task not in self.spec.tasks:
                raise ValueError(
                    f"this {self.spec.name} model offers {', '.join(self.spec.tasks)}, not {task}"
                )
            return result_frame(task, run_task(self.model, task, frame_to_dataset(model_input)))

    return TurbofanModel
