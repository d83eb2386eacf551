"""``turbofan-desktop train FILE --model NAME [--sensor S ... | --all-sensors] [--set key=value ...]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from turbofan_desktop.cli._common import add_output_args, print_json, whole_number
from turbofan_desktop.cli._jobs import (
    brief_metrics,
    open_workspace,
    parse_settings,
    progress_bar,
    stop_on_interrupt,
)
from turbofan_desktop.errors import ConfigError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model on a data file and register it",
        description="Train one model per target sensor (or one model for all sensors) on FILE, validate "
        "it on held-out units and register each version with its lineage.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="training data file")
    parser.add_argument(
        "--model", required=True, metavar="NAME", help="model name (see 'turbofan-desktop plugins')"
    )
    parser.add_argument(
        "--sensor",
        dest="sensors",
        action="extend",
        nargs="+",
        metavar="S",
        help="target sensor(s); repeatable",
    )
    parser.add_argument("--all-sensors", action="store_true", help="train every informative sensor")
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        metavar="KEY=VALUE",
        help="model setting, e.g. --set epochs=2",
    )
    parser.add_argument(
        "--seed",
        type=whole_number("seed", minimum=0, maximum=2**32 - 1),
        default=0,
        help="seed of the unit split and the model (default 0)",
    )
    parser.add_argument(
        "--val-fraction", type=float, default=0.2, metavar="F", help="share of units held out for validation"
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=None,
        metavar="F",
        help="share of units kept apart for later validation and the fleet view's calibration "
        "(default: a RUL model keeps half of the validation share apart, so it fits on the same units; "
        "0: none)",
    )
    parser.add_argument(
        "--executor",
        metavar="WHERE",
        help="where the models train: local (worker processes, the default setting), inprocess, "
        "or a Dask scheduler tcp://host:8786 (tls:// with Dask's TLS settings)",
    )
    parser.add_argument(
        "--workers",
        type=whole_number("workers", minimum=0, maximum=256),
        metavar="N",
        help="local worker processes (0 = from the core count; default: the workers setting)",
    )
    parser.add_argument("--rul", type=Path, metavar="FILE", help="RUL file paired with a C-MAPSS test file")
    parser.add_argument("--unit-col", metavar="NAME", help="unit column of a CSV/Parquet table")
    parser.add_argument("--time-col", metavar="NAME", help="time column of a CSV/Parquet table")
    add_output_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from turbofan_desktop.services.executors import check_executor_spec, executor_for
    from turbofan_desktop.services.training import TrainRequest, train

    if args.sensors and args.all_sensors:
        raise ConfigError("Use either --sensor or --all-sensors, not both.")
    if args.executor is not None:
        check_executor_spec(args.executor)  # a mistyped address is refused before any data is read
    request = TrainRequest(
        plugin=args.model,
        data_path=args.file,
        rul_path=args.rul,
        targets=list(args.sensors) if args.sensors else None,
        all_sensors=args.all_sensors,
        config=parse_settings(args.settings),
        seed=args.seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        unit_col=args.unit_col,
        time_col=args.time_col,
    )
    bar = progress_bar(args)

    def on_progress(job) -> None:
        event = job.event
        label = f"{job.plugin} {job.target} ({job.index + 1}/{job.total})"
        if event.epoch is not None:
            label += f" epoch {event.epoch}" + (f"/{event.epochs}" if event.epochs else "")
        if event.val_loss is not None:
            label += f" val {event.val_loss:.4g}"
        bar.update(job.overall, label)

    with open_workspace(args) as ws, stop_on_interrupt() as stop:
        chosen = args.executor is not None or args.workers is not None
        executor = executor_for(ws, args.executor, workers=args.workers) if chosen else ws.executor()
        try:
            summary = train(ws, request, progress=on_progress, should_stop=stop, executor=executor)
        finally:
            bar.close()
            if chosen:
                executor.close()
    if args.json:
        print_json(summary.to_dict())
    else:
        for outcome in summary.results:
            if outcome.version_id is not None:
                metrics = brief_metrics(outcome.metrics)
                print(
                    f"{outcome.plugin} {outcome.target}: registered version id {outcome.version_id} ({metrics})"
                )
            else:
                print(f"{outcome.plugin} {outcome.target}: {outcome.error}")
        print(
            f"{summary.successful} registered, {summary.failed} failed"
            + (", cancelled" if summary.cancelled else "")
        )
    if summary.cancelled:
        print("training was cancelled", file=sys.stderr)
        return 130
    if summary.failed:
        reasons = {r.error for r in summary.results if r.version_id is None and not r.cancelled}
        # one shared reason (a full disk, a damaged registry) is the sentence the user needs on stderr
        why = f": {reasons.pop()}" if len(reasons) == 1 else "."
        print(f"error: {summary.failed} of {len(summary.results)} target(s) failed{why}", file=sys.stderr)
        return 2
    return 0
