"""A headless end-to-end check of an installation (``turbofan-desktop --self-test``).

In a throw-away registry it loads the bundled FD001 sample, trains a tiny model with each built-in
plugin, registers and validates it, applies it to the paired test file and writes an HTML report.
It proves that the data layer, the plugins (and torch), the registry and the reports work together
on this machine — the check a packaged build runs after installation.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from turbofan_desktop.errors import TurbofanError
from turbofan_desktop.plugins.contract import ModelSpec
from turbofan_desktop.plugins.manager import DEFAULT_PLUGINS

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

FALLBACK_TINY = {"epochs": 1}  # a model without a "tiny" preset trains one epoch of its defaults
SAMPLE_UNITS = 8


def tiny_config(spec: ModelSpec) -> dict[str, Any]:
    """The tiny settings the self-test trains ``spec`` with: the preset its plugin declares."""
    # Not filtered against the schema: a renamed setting must fail the self-test, not vanish from it.
    return spec.preset("tiny") or dict(FALLBACK_TINY)


def builtin_models(ws: Workspace) -> list[ModelSpec]:
    """Model specs contributed by the built-in plugin packages."""
    builtin_names = set()
    for row in ws.plugins.plugins():
        if row.get("module") in DEFAULT_PLUGINS and not row.get("error"):
            builtin_names.update(row.get("models") or [])
    return [spec for name, spec in sorted(ws.plugins.models().items()) if name in builtin_names]


def run_self_test(out: TextIO | None = None, *, keep_dir: Path | None = None) -> int:
    """Run the check; prints a short summary and returns 0, or prints what failed and returns 1."""
    out = out or sys.stdout
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="turbofan-selftest-") as tmp:
            lines = _run(Path(keep_dir or tmp))
    except TurbofanError as exc:
        print(f"self-test FAILED: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the self-test reports every failure as its result
        print(f"self-test FAILED: internal error {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line, file=out)
    print(f"self-test passed in {time.perf_counter() - started:.1f} s", file=out)
    return 0


def _run(home: Path) -> list[str]:
    from turbofan_desktop.services import Workspace
    from turbofan_desktop.services.data import bundled_sample_dir, load_dataset
    from turbofan_desktop.services.inference import detect, forecast, predict_rul
    from turbofan_desktop.services.reports import export_report
    from turbofan_desktop.services.training import TrainRequest, train
    from turbofan_desktop.services.validation import validate

    lines: list[str] = []
    sample = bundled_sample_dir()
    with Workspace.open(home) as ws:
        full = load_dataset(ws, sample / "train_FD001.txt")
        data = full.subset(full.units[:SAMPLE_UNITS], note="self-test")
        test_full = load_dataset(ws, sample / "test_FD001.txt")
        test = test_full.subset(test_full.units[:3], note="self-test")
        lines.append(f"sample: {sample} ({len(full.units)} units, {full.n_rows} rows)")
        specs = builtin_models(ws)
        if not specs:
            raise TurbofanError("no built-in model plugin could be loaded; run 'turbofan-desktop plugins'.")
        for spec in specs:
            targets = [data.informative_sensors[0]] if spec.per_target else None
            request = TrainRequest(
                plugin=spec.name,
                dataset=data,
                targets=targets,
                config=tiny_config(spec),
                seed=0,
                val_fraction=0.25,
            )
            summary = train(ws, request)
            failures = [r.error for r in summary.results if r.error]
            if failures or not summary.registered:
                raise TurbofanError(
                    f"training '{spec.name}' failed: {failures[0] if failures else 'nothing registered'}"
                )
            version_id = summary.registered[0]
            checked = validate(ws, [version_id])
            bad = [r.error for r in checked.results if r.error]
            if bad:
                raise TurbofanError(f"validating '{spec.name}' failed: {bad[0]}")
            applied = []
            if "anomaly" in spec.tasks:
                result = detect(ws, version_id, test)
                applied.append(f"detect {sum(len(u.anomalies) for u in result.units.values())} range(s)")
            if "forecast" in spec.tasks:
                result = forecast(ws, version_id, test)
                applied.append(f"forecast {len(result.units)} unit(s)")
            if "rul" in spec.tasks:
                result = predict_rul(ws, version_id, test)
                applied.append(f"rul {len(result.units)} unit(s)")
            report = export_report(ws, version_id, "html", home / f"report-{version_id}.html")
            if report.stat().st_size == 0:
                raise TurbofanError(f"the report of '{spec.name}' is empty")
            metrics = ", ".join(f"{k}={v:.4g}" for k, v in list(checked.results[0].metrics.items())[:3])
            lines.append(
                f"{spec.name}: trained {summary.results[0].target} (version id {version_id}), "
                f"validated ({metrics}), {', '.join(applied)}, report ok"
            )
    return lines


__all__ = ["run_self_test", "tiny_config"]
