"""Model reports: one version's story as a self-contained HTML file or a PDF.

Both formats carry the same content: the version's identity, validation metrics, training curve,
anomaly or forecast/RUL plots for a few units (of a given data file, else the version's held-out
training units), lineage, config, environment and the sections plugins contribute. Plots are drawn
with matplotlib's Agg canvas on :class:`~matplotlib.figure.Figure` objects — never pyplot — so a report
renders headless, from any thread, without touching the GUI's backend.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from turbofan_desktop.data.dataset import Dataset
from turbofan_desktop.errors import ConfigError, TurbofanError
from turbofan_desktop.plugins.contract import ModelSpec, ProgressEvent
from turbofan_desktop.services import naming
from turbofan_desktop.services._common import artifact_problem
from turbofan_desktop.services.applicability import check_applicability
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.feedback import report_rows as feedback_report_rows
from turbofan_desktop.services.monitoring import kpi_warning

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

log = logging.getLogger(__name__)

FORMATS = ("html", "pdf")
PLOT_UNITS = 3  # units shown in anomaly / forecast plots (the RUL plot shows every unit)
FORECAST_SENSORS = 2


@dataclass
class Plot:
    title: str
    figure: Figure
    caption: str = ""


@dataclass
class ReportContent:
    """Everything a report shows, independent of the output format, in reading order: what the model
    is and on what data (``summary``), how good (``key_figures``), warnings (``notes``), the metrics,
    the figures, further tables (``sections``), plugin sections, and lineage, config and environment
    at the end (``appendix``)."""

    title: str
    summary: list[tuple[str, str]]
    metrics: list[tuple[str, str, str]]  # name, at training, latest validation
    # what the metrics table is (a fleet report lists its plan there, not a version's validation)
    metrics_title: str = "Validation metrics"
    metrics_header: tuple[str, str, str] = ("metric", "at training", "latest validation")
    key_figures: list[tuple[str, str, str]] = field(default_factory=list)  # same columns as metrics
    plots: list[Plot] = field(default_factory=list)
    sections: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)  # key/value tables
    appendix: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    plugin_sections: list[tuple[str, str]] = field(default_factory=list)  # title, HTML fragment
    notes: list[str] = field(default_factory=list)


def default_report_folder(last_used: Path | str | None = None) -> Path:
    """Where a report is saved unless the user says otherwise: the folder last used for a report,
    else the user's Documents folder, else the home folder — never the program's own folders (the
    bundled sample lives inside the installed package)."""
    import turbofan_desktop

    package = Path(turbofan_desktop.__file__).resolve().parent.parent
    if last_used:
        folder = Path(last_used).expanduser()
        inside_package = folder.resolve() == package or package in folder.resolve().parents
        if folder.is_dir() and not inside_package:
            return folder
    documents = Path.home() / "Documents"
    return documents if documents.is_dir() else Path.home()


def export_report(
    ws: Workspace,
    version_id: int,
    fmt: str,
    out_path: Path | str,
    *,
    data_path: Path | str | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
) -> Path:
    """Write the report of ``version_id`` as ``fmt`` ("html" or "pdf") to ``out_path``; returns it."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ConfigError(f"Report format '{fmt}' is not supported; expected html or pdf.")
    out_path = Path(out_path).expanduser()
    if out_path.is_dir():
        out_path = out_path / f"model-{version_id}.{fmt}"
    report = progress or (lambda event: None)
    report(ProgressEvent(stage="report", fraction=0.0, message="collecting"))
    content = collect_content(ws, int(version_id), data_path=data_path, progress=report)
    report(ProgressEvent(stage="report", fraction=0.8, message=f"writing {fmt}"))
    write_content(content, out_path, fmt)
    report(ProgressEvent(stage="report", fraction=1.0, message="done"))
    return out_path


def write_content(content: ReportContent, out_path: Path, fmt: str) -> None:
    """Write ``content`` as HTML or PDF; a folder or disk that refuses becomes one sentence."""
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "html":
            out_path.write_text(render_html(content), encoding="utf-8")
        else:
            write_pdf(content, out_path)
    except OSError as exc:
        raise ConfigError(f"Cannot write the report to {out_path}: {exc.strerror or exc}.") from None


# -- content -----------------------------------------------------------------------------------------
def _get(record: Any, name: str, default: Any = None) -> Any:
    if isinstance(record, dict):
        return record.get(name, default)
    return getattr(record, name, default)


def _record_dict(record: Any) -> dict[str, Any]:
    to_dict = getattr(record, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    if isinstance(record, dict):
        return dict(record)
    return dict(vars(record))


def number(value: float) -> str:
    """A number as a person reads it in a table: four significant digits, thousands grouped, no
    exponent below a billion (14.33, 0.8355, 227,600)."""
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e9:
        return f"{int(value):,}"
    if abs(value) >= 1000 and abs(value) < 1e9:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, list | tuple):
        text = ", ".join(_fmt(v) for v in value)
        return text if len(text) <= 300 else text[:297] + "..."
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return "" if value is None else str(value)


#: metrics per sensor (``forecast_mase_h20_s_11``) stay in the full table, not among the key figures
_PER_SENSOR = re.compile(r"_s_?\d+$")
KEY_FIGURES = 6


def _key_figure_names(names: list[str]) -> list[str]:
    overall = [n for n in names if not _PER_SENSOR.search(n)]
    preferred = [n for n in naming.KEY_METRICS if n in overall]
    rest = [n for n in overall if n not in preferred]
    return (preferred + rest)[:KEY_FIGURES]


def collect_content(
    ws: Workspace,
    version_id: int,
    *,
    data_path: Path | str | None = None,
    progress: Callable[[ProgressEvent], None],
) -> ReportContent:
    record = ws.registry.get(version_id)
    spec = ws.plugins.model(record.plugin)
    info = _record_dict(record)
    lineage = dict(_get(record, "lineage", None) or info.get("lineage") or {})
    provenance = record.provenance
    metrics = dict(_get(record, "metrics", None) or {})
    validation = dict(_get(record, "validation_metrics", None) or {})
    trained = naming.trained_on(record)
    held_out = f"held-out units of {trained.file}"
    latest_hash = _get(record, "validation_data_hash", None)
    latest_on = naming.data_description(ws, record, latest_hash).text if latest_hash else "-"
    times = f"{_fmt(lineage.get('time_start'))}..{_fmt(lineage.get('time_end'))}"
    names = sorted(set(metrics) | set(validation), key=naming.natural_key)
    rows = [(name, _fmt(metrics.get(name)), _fmt(validation.get(name))) for name in names]
    by_name = {row[0]: row for row in rows}
    content = ReportContent(
        title=f"Model report: {naming.version_name(record)}",
        summary=[
            ("Model", f"{spec.name} ({spec.description})" if spec.description else spec.name),
            ("Tasks", ", ".join(spec.tasks)),
            ("Target", "all sensors (*)" if record.target == "*" else str(record.target)),
            ("Stage / status", f"{_get(record, 'stage', '')} / {_get(record, 'status', '')}"),
            ("Created", str(_get(record, "created", ""))[:19].replace("T", " ")),
            ("Trained on", f"{trained.text}: {_fmt(lineage.get('units'))} units, {_fmt(lineage.get('rows'))} rows, "
             f"{lineage.get('time_kind', 'time')} {times}"),
            ("Metrics at training", f"computed on the {held_out}"),
            ("Latest validation", f"computed on {latest_on}" if latest_hash else "none after training"),
            ("Report generated", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ],
        metrics=rows,
        metrics_header=("metric", f"at training ({held_out})", f"latest validation ({latest_on})"),
    )  # fmt: skip
    content.key_figures = [by_name[name] for name in _key_figure_names(names)]
    warning = kpi_warning(ws, version_id)
    if warning:
        content.notes.append(f"KPI warning: {warning}")
    history = list(_get(record, "history", None) or [])
    if history:
        content.plots.append(training_curve(history))
    else:
        content.notes.append("No training history was recorded for this version.")
    progress(ProgressEvent(stage="report", fraction=0.2, message="plots"))
    try:
        data = _plot_data(ws, record, data_path)
        verdict = check_applicability(ws, record, data)
        on = _data_name(data) if data_path is not None else held_out
        content.summary.insert(
            -1, ("Figures drawn on", f"{on}; applicability: {verdict.verdict.replace('_', ' ')}")
        )
        if not verdict.ok:
            content.notes.append(
                f"Applicability of the figures' data: {verdict.verdict.replace('_', ' ')} — "
                + " ".join(reason[:1].upper() + reason[1:] for reason in verdict.reasons)
            )
        content.plots.extend(task_plots(ws, version_id, spec, data, on=on, latest=(latest_hash, validation)))
    except TurbofanError as exc:
        content.notes.append(f"Model plots were skipped: {exc}")
    except Exception as exc:  # noqa: BLE001 - a report without plots beats no report
        log.exception("report plots for version %s failed", version_id)
        content.notes.append(f"Model plots were skipped after an internal error ({artifact_problem(exc)}).")
    progress(ProgressEvent(stage="report", fraction=0.6, message="tables"))
    history_rows = _validation_history(ws, record)
    if history_rows:
        content.sections.append(("Validation and drift history", history_rows))
    labels = feedback_report_rows(ws, version_id)
    if labels:
        content.sections.append(("Feedback labels", labels))
    content.appendix.append(("Lineage (training data)", [(k, _fmt(v)) for k, v in lineage.items()]))
    content.appendix.append(
        (
            "Split and source",
            [
                ("seed", _fmt(provenance.seed)),
                ("val_fraction", _fmt(provenance.val_fraction)),
                ("test_fraction", _fmt(provenance.test_fraction)),
                *[(f"source {k}", _fmt(v)) for k, v in _parts(provenance.source)],
                *[(f"split {k}", _fmt(v)) for k, v in _parts(provenance.split)],
                *[(f"fit {k}", _fmt(v)) for k, v in _parts(provenance.fit)],
                *[(f"trained on {k}", _fmt(v)) for k, v in _parts(provenance.trained_on)],
            ],
        )
    )
    content.appendix.append(
        ("Config", [(k, _fmt(v)) for k, v in dict(_get(record, "config", {}) or {}).items()])
    )
    content.appendix.append(
        ("Environment", [(k, _fmt(v)) for k, v in dict(_get(record, "library_versions", {}) or {}).items()])
    )
    content.appendix[-1][1].insert(0, ("training seconds", _fmt(_get(record, "training_seconds", None))))
    for section in ws.plugins.report_sections():
        if not set(section.tasks) & set(spec.tasks):
            continue
        try:
            content.plugin_sections.append((section.title, str(section.render(info))))
        except Exception as exc:  # noqa: BLE001 - a plugin's broken section must not break the report
            log.warning("report section %r failed: %s", section.title, exc)
            content.notes.append(f"Report section '{section.title}' failed: {artifact_problem(exc)}")
    return content


def _parts(part: Any) -> list[tuple[str, Any]]:
    """A provenance part's fields as (name, value) rows; none when the part was not recorded."""
    return list(part.to_dict().items()) if part is not None else []


def _data_name(data: Dataset) -> str:
    name = data.source.name if data.source else (data.name or "the data")
    short = (data.file_sha256 or data.data_hash)[: naming.SHORT_HASH]
    return f"{name} ({short})"


def _validation_history(ws: Workspace, record: Any) -> list[tuple[str, str]]:
    """Every stored evaluation and drift check of the version: when, what kind, on which data, the
    headline numbers."""
    reader = getattr(ws.registry, "metric_history", None)
    if reader is None:
        return []
    entries = list(reader(int(record.id)))
    rows = []
    for entry, on in zip(entries, naming.history_data(ws, record, entries), strict=True):
        metrics = dict(_get(entry, "metrics") or {})
        if _get(entry, "kind") == "drift":
            drifted = list(metrics.get("drifted") or [])
            shown = f"{len(drifted)} drifted sensor(s){': ' + ', '.join(drifted) if drifted else ''}"
            if isinstance(metrics.get("max_psi"), int | float):
                shown += f", largest PSI {_fmt(float(metrics['max_psi']))}"
        else:
            names = _key_figure_names(sorted(metrics, key=naming.natural_key))[:4]
            shown = ", ".join(f"{k} {_fmt(metrics[k])}" for k in names)
        label = f"{str(_get(entry, 'created', ''))[:16].replace('T', ' ')} {_get(entry, 'kind', '')}".strip()
        rows.append((label, f"on {on}: {shown}"))
    return rows


def _plot_data(ws: Workspace, record: Any, data_path) -> Dataset:
    """The given file, else the version's held-out training units (validation split)."""
    if data_path is not None:
        return load_dataset(ws, data_path)
    from turbofan_desktop.services.validation import held_out_data

    return held_out_data(ws, record)


def task_plots(
    ws: Workspace,
    version_id: int,
    spec: ModelSpec,
    data: Dataset,
    *,
    on: str = "the data",
    latest: tuple[str | None, dict[str, Any]] = (None, {}),
) -> list[Plot]:
    """The task figures on ``data`` (named ``on`` in captions). A report draws what it was asked to,
    also on data out of the version's scope: the verdict is in the report's notes."""
    from turbofan_desktop.services import inference

    plots: list[Plot] = []
    few = data.subset(data.units[:PLOT_UNITS]) if len(data.units) > PLOT_UNITS else data
    shown = f"units {', '.join(str(u) for u in few.units)} of {len(data.units)} in {on}"
    if "anomaly" in spec.tasks:
        # a report reads: the detection drawn here must not append KPIs to the version's history
        result = inference.detect(ws, version_id, few, record_kpis=False, accept_out_of_scope=True)
        plots.append(anomaly_plot(result, data, shown))
    if "forecast" in spec.tasks:
        result = inference.forecast(ws, version_id, few, accept_out_of_scope=True)
        plots.append(forecast_plot(result, few, shown))
    if "rul" in spec.tasks:
        result = inference.predict_rul(ws, version_id, data, accept_out_of_scope=True)
        plots.append(rul_plot(result, on, same_as_table=latest[0] == data.data_hash, table=latest[1]))
    return plots


# -- plots -----------------------------------------------------------------------------------------------
def training_curve(history: list[dict[str, Any]]) -> Plot:
    fig = Figure(figsize=(7.5, 3.2), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    for key, label in (("train_loss", "training loss"), ("val_loss", "validation loss")):
        values = [row.get(key) for row in history]
        if any(v is not None for v in values):
            ax.plot(epochs, [np.nan if v is None else v for v in values], marker="o", ms=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    _margins(fig)
    return Plot("Training curve", fig, f"{len(history)} epoch(s).")


def anomaly_plot(result: Any, data: Dataset, shown: str = "") -> Plot:
    from matplotlib.patches import Patch

    units = list(result.units.items())
    fig = Figure(figsize=(7.5, 2.4 * max(len(units), 1)), dpi=100)
    for row, (unit, det) in enumerate(units, start=1):
        ax = fig.add_subplot(max(len(units), 1), 1, row)
        ax.plot(det.time, det.smoothed, lw=1, label="smoothed prediction error")
        ax.plot(det.time, det.threshold, lw=1, ls="--", color="black", label="threshold")
        for rng in det.anomalies:
            ax.axvspan(rng.start, rng.end, color="tab:red", alpha=0.25)
        ax.set_title(f"unit {unit}: {len(det.anomalies)} anomalous range(s)", fontsize=9)
        ax.set_xlabel(data.time_col, fontsize=8)
        ax.tick_params(labelsize=7)
        if row == 1:
            handles, _labels = ax.get_legend_handles_labels()
            handles.append(Patch(color="tab:red", alpha=0.25, label="flagged anomalous range"))
            ax.legend(handles=handles, loc="upper left", fontsize=7)
    _margins(fig)
    total = sum(len(d.anomalies) for _, d in units)
    return Plot(
        f"Anomaly detection on {result.target}",
        fig,
        f"{total} anomalous range(s) in {shown or f'{len(units)} unit(s)'}.",
    )


def forecast_plot(result: Any, data: Dataset, shown: str = "") -> Plot:
    units = list(result.units.items())
    rows = max(len(units), 1)
    sensors = []
    for _unit, uf in units:
        sensors = sorted(uf.sensors, key=naming.natural_key)[:FORECAST_SENSORS]
        break
    cols = max(len(sensors), 1)
    fig = Figure(figsize=(7.5, 2.3 * rows), dpi=100)
    for r, (unit, uf) in enumerate(units):
        history = data.unit_frame(unit)
        for c, sensor in enumerate(sensors):
            ax = fig.add_subplot(rows, cols, r * cols + c + 1)
            sf = uf.sensors.get(sensor)
            if sensor in history.columns:
                ax.plot(
                    history[data.time_col].to_numpy(), history[sensor].to_numpy(), lw=0.8, color="gray",
                    label="observed",
                )  # fmt: skip
            if sf is not None:
                ax.fill_between(
                    sf.time, sf.lower, sf.upper, alpha=0.45, color="tab:orange", lw=0,
                    label=f"{result.interval:.0%} interval",
                )  # fmt: skip
                ax.plot(sf.time, sf.median, lw=1.4, color="tab:red", label="forecast median")
            ax.set_title(f"unit {unit} — {sensor}", fontsize=8)
            ax.tick_params(labelsize=6)
            if r == 0 and c == 0:
                ax.legend(loc="upper left", fontsize=6)
    _margins(fig)
    return Plot(
        "Sensor forecast",
        fig,
        f"Median and {result.interval:.0%} interval, {result.horizon} steps ahead, for "
        f"{', '.join(sensors)} in {shown or f'{len(units)} unit(s)'}.",
    )


def rul_plot(
    result: Any, on: str = "the data", *, same_as_table: bool = False, table: dict | None = None
) -> Plot:
    """Every unit's predicted RUL with its interval (and the true RUL when known): the RMSE in the
    caption is over the very units drawn, and says whether it is the table's number."""
    units = list(result.units)
    fig = Figure(figsize=(7.5, 3.4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(units))
    rul = np.array([u.rul for u in units], dtype=float)
    low = np.array([u.lower for u in units], dtype=float)
    high = np.array([u.upper for u in units], dtype=float)
    ax.errorbar(
        x, rul, yerr=[rul - low, high - rul], fmt="o", ms=3, capsize=2, elinewidth=0.8,
        label=f"predicted RUL, {result.interval:.0%} interval",
    )  # fmt: skip
    truth = [u.true_rul for u in units]
    caption = f"Predicted RUL with {result.interval:.0%} interval for all {len(units)} units of {on}."
    if any(t is not None for t in truth):
        ax.plot(x, [np.nan if t is None else t for t in truth], "x", color="tab:red", label="true RUL")
        known = [(u.rul, u.true_rul) for u in units if u.true_rul is not None]
        rmse = float(np.sqrt(np.mean([(p - t) ** 2 for p, t in known])))
        caption += f" RMSE against the true RUL over these {len(known)} units: {number(rmse)}"
        stored = (table or {}).get("rul_rmse")
        if same_as_table and isinstance(stored, int | float):
            caption += f" (the latest validation's rul_rmse on the same data: {number(float(stored))})."
        else:
            caption += " (the metrics table's rul_rmse was computed on other data)."
    step = max(1, int(math.ceil(len(units) / 40)))  # at most ~40 tick labels
    ax.set_xticks(x[::step])
    ax.set_xticklabels([str(u.unit) for u in units][::step], fontsize=6, rotation=90)
    ax.set_xlabel("unit")
    ax.set_ylabel("cycles")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    _margins(fig)
    return Plot("Remaining useful life", fig, caption)


def _margins(fig: Figure) -> None:
    """Fixed margins: ``tight_layout`` measured every tick label and dominated the report's time."""
    fig.subplots_adjust(left=0.09, right=0.98, top=0.92, bottom=0.14, hspace=0.6, wspace=0.25)


def _png_base64(fig: Figure) -> str:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# -- HTML ---------------------------------------------------------------------------------------------
_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 60em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
td, th { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.v { font-family: monospace; word-break: break-all; }
figure { margin: 1em 0; } figcaption { font-size: .85em; color: #555; } img { max-width: 100%; }
.note { color: #8a5300; }
"""


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...] | None = None) -> str:
    parts = ["<table>"]
    if header:
        parts.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        cells = [f"<th>{html.escape(row[0])}</th>"] + [
            f'<td class="v">{html.escape(c)}</td>' for c in row[1:]
        ]
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table>")
    return "\n".join(parts)


def render_html(content: ReportContent) -> str:
    """One self-contained page: styles inline, plots embedded as base64 PNG, no external requests."""
    body = [f"<h1>{html.escape(content.title)}</h1>", _table(content.summary)]
    if content.key_figures:
        body.append("<h2>Key figures</h2>")
        body.append(_table(content.key_figures, content.metrics_header))
    if content.notes:
        body.append(
            "<h2>Notes</h2><ul>" + "".join(f'<li class="note">{html.escape(n)}</li>' for n in content.notes)
        )
        body.append("</ul>")
    body.append(f"<h2>{html.escape(content.metrics_title)}</h2>")
    if content.metrics:
        body.append(_table(content.metrics, content.metrics_header))
    else:
        body.append("<p>No metrics recorded.</p>")
    for number_, plot in enumerate(content.plots, start=1):
        body.append(f"<h2>{html.escape(plot.title)}</h2>")
        body.append(
            f'<figure><img alt="{html.escape(plot.title)}" src="data:image/png;base64,{_png_base64(plot.figure)}">'
            f"<figcaption>Figure {number_}. {html.escape(plot.caption)}</figcaption></figure>"
        )
    for title, rows in content.sections:
        body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(_table(rows) if rows else "<p>(none)</p>")
    for title, fragment in content.plugin_sections:
        body.append(f"<h2>{html.escape(title)}</h2>\n<div>{fragment}</div>")
    for title, rows in content.appendix:
        body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(_table(rows) if rows else "<p>(none)</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(content.title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


# -- PDF ----------------------------------------------------------------------------------------------
PAGE_SIZE = (8.27, 11.69)  # A4 portrait, inches
MARGIN = 0.7  # inches on every side
_CHAR_WIDTH = 0.58  # average glyph width of DejaVu Sans in ems, for wrapping table cells
_BOLD_WIDER = 1.25  # a bold header's width over the same text's in the regular weight (with room)


def _html_to_text(fragment: str) -> str:
    text = re.sub(r"<(br|/p|/tr|/li|/h\d)\s*/?>", "\n", fragment, flags=re.I)
    text = re.sub(r"<[^>]+>", " ", text)
    return html.unescape(re.sub(r"[ \t]+", " ", text)).strip()


class _PdfFlow:
    """Text, tables and figures flowed down A4 pages, laid out like the HTML report.

    Positions are in inches from the page's top-left corner; each page is one matplotlib Figure
    saved into the PdfPages when full. Text is real text (Type 42 fonts), so it can be extracted.
    """

    def __init__(self, pdf: Any, title: str) -> None:
        self.pdf, self.title = pdf, title
        self.width, self.height = PAGE_SIZE
        self.fig: Figure | None = None
        self.y = 0.0
        self.pages = 0

    # -- pages -----------------------------------------------------------------------------------------
    def _page(self) -> Figure:
        if self.fig is None:
            self.fig = Figure(figsize=PAGE_SIZE)
            self.pages += 1
            self.y = MARGIN
            if self.pages > 1:
                self._text(MARGIN, MARGIN * 0.6, self.title, 7, color="#777777")
        return self.fig

    def finish_page(self) -> None:
        if self.fig is not None:
            self._text(self.width - MARGIN, self.height - MARGIN * 0.5, f"page {self.pages}", 7, ha="right")
            self.pdf.savefig(self.fig)
            self.fig = None

    def _room(self, needed: float) -> None:
        self._page()
        if self.y + needed > self.height - MARGIN and self.y > MARGIN:
            self.finish_page()
            self._page()

    def _text(self, x: float, y: float, text: str, size: float, **kw: Any) -> None:
        assert self.fig is not None
        kw.setdefault("va", "top")
        self.fig.text(x / self.width, 1 - y / self.height, text, fontsize=size, **kw)

    @staticmethod
    def _line_height(size: float) -> float:
        return size * 1.4 / 72

    @staticmethod
    def _wrap(text: str, width_in: float, size: float) -> list[str]:
        chars = max(8, int(width_in * 72 / (size * _CHAR_WIDTH)))
        return textwrap.wrap(str(text), chars, break_long_words=True) or [""]

    # -- blocks ----------------------------------------------------------------------------------------
    def heading(self, text: str, size: float = 12) -> None:
        self._room(self._line_height(size) * 3)  # never a heading alone at the foot of a page
        self.y += self._line_height(size) * 0.5
        self._text(MARGIN, self.y, text, size, weight="bold")
        self.y += self._line_height(size) * 1.2

    def paragraph(self, text: str, size: float = 9, color: str = "#222222") -> None:
        for line in self._wrap(text, self.width - 2 * MARGIN, size):
            self._room(self._line_height(size))
            self._text(MARGIN, self.y, line, size, color=color)
            self.y += self._line_height(size)
        self.y += self._line_height(size) * 0.3

    def table(
        self, rows: list[tuple[str, ...]], header: tuple[str, ...] | None = None, size: float = 8
    ) -> None:
        """Columns sized to their content (the first, of names, at most 40 % of the width); long cells
        wrap; the header repeats on every page the table runs onto."""
        if not rows:
            self.paragraph("(none)", size)
            return
        columns = len(rows[0])
        usable = self.width - 2 * MARGIN
        longest = [max(len(str(r[i])) for r in rows) for i in range(columns)]
        if header:  # a long header wraps rather than widening its column
            longest = [max(n, min(len(str(h)), 24)) for n, h in zip(longest, header, strict=True)]
        # the first column (names) as wide as its longest entry, up to 40 %; the others share the rest
        names = max(longest[0], len(str(header[0])) * _BOLD_WIDER if header else 0)  # the header is bold
        first = min(0.4 * usable, (names + 2) * size * _CHAR_WIDTH / 72) if columns > 1 else usable
        rest = [max(6, min(n, 80)) for n in longest[1:]]
        widths = [first] + [(usable - first) * w / sum(rest) for w in rest]
        line = self._line_height(size)

        def draw(cells: tuple[str, ...], bold: bool) -> None:
            wrapped = [self._wrap(c, w - 0.08, size) for c, w in zip(cells, widths, strict=True)]
            height = line * max(len(w) for w in wrapped) + 0.04
            page = self.pages
            self._room(height)
            if header and not bold and self.pages != page:
                draw(tuple(header), True)  # the table runs onto a new page: repeat its header
            assert self.fig is not None
            x = MARGIN
            for lines, width in zip(wrapped, widths, strict=True):
                weight = "bold" if bold else "normal"
                self._text(x, self.y + 0.02, "\n".join(lines), size, weight=weight, linespacing=1.25)
                x += width
            self.y += height
            self.fig.add_artist(
                _rule(self.fig, MARGIN / self.width, 1 - MARGIN / self.width, 1 - self.y / self.height)
            )

        if header:
            self._room(2 * line + 0.1)  # a header never sits alone at the foot of a page
            draw(tuple(header), True)
        for row in rows:
            draw(tuple(str(c) for c in row), False)
        self.y += line * 0.6

    def figure(self, plot: Plot, number_: int) -> None:
        """A figure as wide as the text, titled and captioned like the HTML (rendered at 150 dpi)."""
        from matplotlib.image import imread

        buffer = io.BytesIO()
        FigureCanvasAgg(plot.figure)
        plot.figure.savefig(buffer, format="png", dpi=150)
        buffer.seek(0)
        image = imread(buffer)
        width = self.width - 2 * MARGIN
        height = width * image.shape[0] / image.shape[1]
        most = self.height - 2 * MARGIN - 1.0
        if height > most:
            width, height = width * most / height, most
        self._room(self._line_height(12) * 2 + height + self._line_height(8) * 2)  # title, figure, caption
        self.heading(plot.title)
        assert self.fig is not None
        axes = self.fig.add_axes(
            (
                MARGIN / self.width,
                1 - (self.y + height) / self.height,
                width / self.width,
                height / self.height,
            )
        )
        axes.imshow(image, interpolation="antialiased")
        axes.set_axis_off()
        self.y += height + 0.08
        self.paragraph(f"Figure {number_}. {plot.caption}", 8, color="#555555")


def _rule(fig: Figure, x0: float, x1: float, y: float) -> Any:
    from matplotlib.lines import Line2D

    return Line2D([x0, x1], [y, y], transform=fig.transFigure, lw=0.3, color="#cccccc")


def write_pdf(content: ReportContent, out_path: Path) -> None:
    """Laid out like the HTML report: a first page with what the model is, on what data and how good
    (key figures, notes), then the metrics, the figures with captions, the further tables, and lineage,
    config and environment at the end. Fonts are embedded as TrueType (Type 42) so the text can be
    searched and extracted."""
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    tmp = out_path.with_name(out_path.name + ".part")
    metadata = {"Title": content.title, "Creator": "turbofan-desktop"}
    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(tmp, metadata=metadata) as pdf:
        flow = _PdfFlow(pdf, content.title)
        flow.heading(content.title, 15)
        flow.table(content.summary, size=8.5)
        if content.key_figures:
            flow.heading("Key figures")
            flow.table(content.key_figures, content.metrics_header, size=9)
        if content.notes:
            flow.heading("Notes")
            for note in content.notes:
                flow.paragraph(f"• {note}", 8.5, color="#8a5300")
        flow.heading(content.metrics_title)
        if content.metrics:
            flow.table(content.metrics, content.metrics_header)
        else:
            flow.paragraph("No metrics recorded.")
        for number_, plot in enumerate(content.plots, start=1):
            flow.figure(plot, number_)
        for title, rows in content.sections:
            flow.heading(title)
            flow.table(rows)
        for title, fragment in content.plugin_sections:
            flow.heading(title)
            for line in _html_to_text(fragment).splitlines():
                flow.paragraph(line, 8)
        for title, rows in content.appendix:
            flow.heading(title)
            flow.table(rows)
        flow.finish_page()
    tmp.replace(out_path)


__all__ = ["FORMATS", "default_report_folder", "export_report", "number", "render_html", "write_pdf"]
