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
from turbofan_desktop.services._common import artifact_problem
from turbofan_desktop.services.data import load_dataset
from turbofan_desktop.services.feedback import report_rows as feedback_report_rows
from turbofan_desktop.services.monitoring import kpi_warning

if TYPE_CHECKING:
    from turbofan_desktop.services import Workspace

log = logging.getLogger(__name__)

FORMATS = ("html", "pdf")
PLOT_UNITS = 3  # units shown in anomaly / forecast plots
RUL_UNITS = 30  # units shown in the RUL plot
FORECAST_SENSORS = 2


@dataclass
class Plot:
    title: str
    figure: Figure
    caption: str = ""


@dataclass
class ReportContent:
    """Everything a report shows, independent of the output format."""

    title: str
    summary: list[tuple[str, str]]
    metrics: list[tuple[str, str, str]]  # name, at training, latest validation
    plots: list[Plot] = field(default_factory=list)
    sections: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)  # key/value tables
    plugin_sections: list[tuple[str, str]] = field(default_factory=list)  # title, HTML fragment
    notes: list[str] = field(default_factory=list)
    # what the metrics table is (a fleet report lists its plan there, not a version's validation)
    metrics_title: str = "Validation metrics"
    metrics_header: tuple[str, str, str] = ("metric", "at training", "latest validation")


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
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "html":
            out_path.write_text(render_html(content), encoding="utf-8")
        else:
            write_pdf(content, out_path)
    except OSError as exc:
        raise ConfigError(f"Cannot write the report to {out_path}: {exc.strerror or exc}.") from None
    report(ProgressEvent(stage="report", fraction=1.0, message="done"))
    return out_path


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


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        text = ", ".join(_fmt(v) for v in value)
        return text if len(text) <= 300 else text[:297] + "..."
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return "" if value is None else str(value)


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
    content = ReportContent(
        title=f"{record.plugin} / {record.target} — version {_get(record, 'version', '?')} (id {version_id})",
        summary=[
            ("Model", f"{spec.name} ({spec.description})" if spec.description else spec.name),
            ("Tasks", ", ".join(spec.tasks)),
            ("Target", str(record.target)),
            ("Version", str(_get(record, "version", ""))),
            ("Stage", str(_get(record, "stage", ""))),
            ("Status", str(_get(record, "status", ""))),
            ("Created", str(_get(record, "created", ""))),
            ("Validated", "yes" if _get(record, "validation_performed", False) else "no"),
            ("Validation data hash", str(_get(record, "validation_data_hash", "") or "")),
            ("Training seconds", _fmt(_get(record, "training_seconds", None))),
            ("Report generated", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ],
        metrics=[
            (name, _fmt(metrics.get(name)), _fmt(validation.get(name)))
            for name in sorted(set(metrics) | set(validation))
        ],
    )
    history = list(_get(record, "history", None) or [])
    if history:
        content.plots.append(training_curve(history))
    else:
        content.notes.append("No training history was recorded for this version.")
    progress(ProgressEvent(stage="report", fraction=0.2, message="plots"))
    try:
        data = _plot_data(ws, record, data_path)
        content.plots.extend(task_plots(ws, version_id, spec, data))
    except TurbofanError as exc:
        content.notes.append(f"Model plots were skipped: {exc}")
    except Exception as exc:  # noqa: BLE001 - a report without plots beats no report
        log.exception("report plots for version %s failed", version_id)
        content.notes.append(f"Model plots were skipped after an internal error ({artifact_problem(exc)}).")
    progress(ProgressEvent(stage="report", fraction=0.6, message="tables"))
    history_rows = _validation_history(ws, version_id)
    if history_rows:
        content.sections.append(("Validation history", history_rows))
    labels = feedback_report_rows(ws, version_id)
    if labels:
        content.sections.append(("Feedback labels", labels))
    warning = kpi_warning(ws, version_id)
    if warning:
        content.notes.append(f"KPI warning: {warning}")
    content.sections.append(("Lineage (training data)", [(k, _fmt(v)) for k, v in lineage.items()]))
    content.sections.append(
        (
            "Split and source",
            [
                ("seed", _fmt(provenance.seed)),
                ("val_fraction", _fmt(provenance.val_fraction)),
                ("test_fraction", _fmt(provenance.test_fraction)),
                *[(f"source {k}", _fmt(v)) for k, v in _parts(provenance.source)],
                *[(f"split {k}", _fmt(v)) for k, v in _parts(provenance.split)],
                *[(f"fit {k}", _fmt(v)) for k, v in _parts(provenance.fit)],
            ],
        )
    )
    content.sections.append(
        ("Config", [(k, _fmt(v)) for k, v in dict(_get(record, "config", {}) or {}).items()])
    )
    content.sections.append(
        ("Environment", [(k, _fmt(v)) for k, v in dict(_get(record, "library_versions", {}) or {}).items()])
    )
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


def _validation_history(ws: Workspace, version_id: int) -> list[tuple[str, str]]:
    """Every stored evaluation of the version: when, on which data (hash), the first metrics."""
    rows = []
    for entry in ws.registry.metric_history(version_id):
        metrics = dict(entry.metrics or {})
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in list(metrics.items())[:4])
        label = f"{entry.created} {entry.kind}".strip()
        rows.append((label, f"data {str(entry.data_hash or '-')[:16]}: {shown}"))
    return rows


def _plot_data(ws: Workspace, record: Any, data_path) -> Dataset:
    """The given file, else the version's held-out training units (validation split)."""
    if data_path is not None:
        return load_dataset(ws, data_path)
    from turbofan_desktop.services.validation import held_out_data

    return held_out_data(ws, record)


def task_plots(ws: Workspace, version_id: int, spec: ModelSpec, data: Dataset) -> list[Plot]:
    from turbofan_desktop.services import inference

    plots: list[Plot] = []
    few = data.subset(data.units[:PLOT_UNITS]) if len(data.units) > PLOT_UNITS else data
    if "anomaly" in spec.tasks:
        # a report reads: the detection drawn here must not append KPIs to the version's history
        plots.append(anomaly_plot(inference.detect(ws, version_id, few, record_kpis=False), data))
    if "forecast" in spec.tasks:
        plots.append(forecast_plot(inference.forecast(ws, version_id, few), few))
    if "rul" in spec.tasks:
        many = data.subset(data.units[:RUL_UNITS]) if len(data.units) > RUL_UNITS else data
        plots.append(rul_plot(inference.predict_rul(ws, version_id, many)))
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


def anomaly_plot(result: Any, data: Dataset) -> Plot:
    units = list(result.units.items())
    fig = Figure(figsize=(7.5, 2.4 * max(len(units), 1)), dpi=100)
    for row, (unit, det) in enumerate(units, start=1):
        ax = fig.add_subplot(max(len(units), 1), 1, row)
        ax.plot(det.time, det.smoothed, lw=1, label="smoothed error")
        ax.plot(det.time, det.threshold, lw=1, ls="--", color="black", label="threshold")
        for rng in det.anomalies:
            ax.axvspan(rng.start, rng.end, color="tab:red", alpha=0.25)
        ax.set_title(f"unit {unit}: {len(det.anomalies)} anomalous range(s)", fontsize=9)
        ax.set_xlabel(data.time_col, fontsize=8)
        ax.tick_params(labelsize=7)
        if row == 1:
            ax.legend(loc="upper left", fontsize=7)
    _margins(fig)
    total = sum(len(d.anomalies) for _, d in units)
    return Plot(
        f"Anomaly detection on {result.target}",
        fig,
        f"{total} anomalous range(s) over {len(units)} unit(s); shaded = flagged.",
    )


def forecast_plot(result: Any, data: Dataset) -> Plot:
    units = list(result.units.items())
    rows = max(len(units), 1)
    sensors = []
    for _unit, uf in units:
        sensors = list(uf.sensors)[:FORECAST_SENSORS]
        break
    cols = max(len(sensors), 1)
    fig = Figure(figsize=(7.5, 2.3 * rows), dpi=100)
    for r, (unit, uf) in enumerate(units):
        history = data.unit_frame(unit)
        for c, sensor in enumerate(sensors):
            ax = fig.add_subplot(rows, cols, r * cols + c + 1)
            sf = uf.sensors.get(sensor)
            if sensor in history.columns:
                ax.plot(history[data.time_col].to_numpy(), history[sensor].to_numpy(), lw=0.8, color="gray")
            if sf is not None:
                ax.fill_between(sf.time, sf.lower, sf.upper, alpha=0.3, color="tab:blue")
                ax.plot(sf.time, sf.median, lw=1.2, color="tab:blue")
            ax.set_title(f"unit {unit} — {sensor}", fontsize=8)
            ax.tick_params(labelsize=6)
    _margins(fig)
    return Plot(
        "Sensor forecast",
        fig,
        f"Median and {result.interval:.0%} interval, horizon {result.horizon}; gray = observed history.",
    )


def rul_plot(result: Any) -> Plot:
    units = list(result.units)
    fig = Figure(figsize=(7.5, 3.2), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(units))
    rul = np.array([u.rul for u in units], dtype=float)
    low = np.array([u.lower for u in units], dtype=float)
    high = np.array([u.upper for u in units], dtype=float)
    ax.errorbar(x, rul, yerr=[rul - low, high - rul], fmt="o", ms=3, capsize=2, label="predicted RUL")
    truth = [u.true_rul for u in units]
    caption = f"Predicted RUL with {result.interval:.0%} interval for {len(units)} unit(s)."
    if any(t is not None for t in truth):
        ax.plot(x, [np.nan if t is None else t for t in truth], "x", color="tab:red", label="true RUL")
        known = [(u.rul, u.true_rul) for u in units if u.true_rul is not None]
        rmse = float(np.sqrt(np.mean([(p - t) ** 2 for p, t in known])))
        caption += f" RMSE against the true RUL: {rmse:.2f}."
    ax.set_xticks(x)
    ax.set_xticklabels([str(u.unit) for u in units], fontsize=6, rotation=90)
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
    body.append(f"<h2>{html.escape(content.metrics_title)}</h2>")
    if content.metrics:
        body.append(_table(content.metrics, content.metrics_header))
    else:
        body.append("<p>No metrics recorded.</p>")
    for plot in content.plots:
        body.append(f"<h2>{html.escape(plot.title)}</h2>")
        body.append(
            f'<figure><img alt="{html.escape(plot.title)}" src="data:image/png;base64,{_png_base64(plot.figure)}">'
            f"<figcaption>{html.escape(plot.caption)}</figcaption></figure>"
        )
    for title, rows in content.sections:
        body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(_table(rows) if rows else "<p>(none)</p>")
    for title, fragment in content.plugin_sections:
        body.append(f"<h2>{html.escape(title)}</h2>\n<div>{fragment}</div>")
    if content.notes:
        body.append(
            "<h2>Notes</h2><ul>" + "".join(f'<li class="note">{html.escape(n)}</li>' for n in content.notes)
        )
        body.append("</ul>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(content.title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


# -- PDF ----------------------------------------------------------------------------------------------
PAGE_SIZE = (8.27, 11.69)  # A4 portrait, inches
LINES_PER_PAGE = 62
WRAP = 100


def _html_to_text(fragment: str) -> str:
    text = re.sub(r"<(br|/p|/tr|/li|/h\d)\s*/?>", "\n", fragment, flags=re.I)
    text = re.sub(r"<[^>]+>", " ", text)
    return html.unescape(re.sub(r"[ \t]+", " ", text)).strip()


def _text_lines(content: ReportContent) -> list[str]:
    lines = [content.title, ""]
    lines += [f"{k}: {v}" for k, v in content.summary]
    name, first, second = content.metrics_header
    lines += ["", f"{content.metrics_title} ({name}: {first} | {second})"]
    lines += [f"  {name}: {train} | {latest}" for name, train, latest in content.metrics] or ["  (none)"]
    for title, rows in content.sections:
        lines += ["", title]
        lines += [f"  {k}: {v}" for k, v in rows] or ["  (none)"]
    for title, fragment in content.plugin_sections:
        lines += ["", title, *("  " + line for line in _html_to_text(fragment).splitlines())]
    if content.notes:
        lines += ["", "Notes", *(f"  {n}" for n in content.notes)]
    wrapped: list[str] = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        wrapped.extend(textwrap.wrap(line, WRAP, subsequent_indent=indent) or [""])
    return wrapped


def _text_page(lines: list[str], page: int, pages: int) -> Figure:
    fig = Figure(figsize=PAGE_SIZE)
    fig.text(0.06, 0.97, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=7.5)
    fig.text(0.94, 0.02, f"{page}/{pages}", ha="right", fontsize=7)
    return fig


def _plot_page(plot: Plot) -> Figure:
    """The plot's own figure with its title and caption, saved on its own page."""
    fig = plot.figure
    fig.suptitle(plot.title, fontsize=11)
    if plot.caption:
        fig.text(0.01, 0.005, plot.caption, fontsize=7, va="bottom")
    fig.subplots_adjust(top=0.88, bottom=0.2 if len(fig.axes) == 1 else 0.1)
    return fig


def write_pdf(content: ReportContent, out_path: Path) -> None:
    """Text pages first (identity, metrics, lineage, config, environment), then one page per plot.

    Fonts are embedded as TrueType (Type 42) so the text can be searched and extracted.
    """
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    lines = _text_lines(content)
    chunks = [lines[i : i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)] or [[]]
    tmp = out_path.with_name(out_path.name + ".part")
    metadata = {"Title": content.title, "Creator": "turbofan-desktop"}
    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(tmp, metadata=metadata) as pdf:
        for number, chunk in enumerate(chunks, start=1):
            pdf.savefig(_text_page(chunk, number, len(chunks)))
        for plot in content.plots:
            pdf.savefig(_plot_page(plot))
    tmp.replace(out_path)


__all__ = ["FORMATS", "export_report", "render_html", "write_pdf"]
