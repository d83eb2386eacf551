"""Issue 20, class 7: every setting from every source (settings.toml, TURBOFAN_* variables, --set,
numeric CLI arguments) is type- and range-checked once; a bad one is one sentence naming the setting
and its source, exit 2, and nothing is created or recorded. NaN and infinity never pass a range."""

from __future__ import annotations

import pytest
from data_faults_helpers import assert_refused, run_cli, small_train_file

from turbofan_desktop.config import load_settings


@pytest.fixture
def registry(isolated_home, capsys):
    """The isolated registry, created up front so that "unchanged" compares a real database."""
    code, _, err = run_cli(capsys, "models", "list")
    assert code == 0, err
    return isolated_home


def _write_settings(home, text: str):
    folder = home / "config"
    folder.mkdir(exist_ok=True)
    path = folder / "settings.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "line",
    ["home = 5", "home = {a = 1}", 'home = ""', 'home = "relative/registry"', "home = [1, 2]"],
    ids=["number", "table", "empty", "relative", "array"],
)
def test_bad_home_in_settings_file_creates_nothing(capsys, isolated_home, monkeypatch, tmp_path, line):
    monkeypatch.delenv("TURBOFAN_HOME")
    settings = _write_settings(isolated_home, line + "\n")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    sentence = assert_refused(capsys, isolated_home, ["models", "list"], "'home'", str(settings))
    assert "absolute folder path" in sentence
    assert list(workdir.iterdir()) == []  # no registry appeared under the current folder


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TURBOFAN_MAX_FILE_MB", "nan", "above 0"),
        ("TURBOFAN_MAX_FILE_MB", "inf", "above 0"),
        ("TURBOFAN_MAX_FILE_MB", "-1", "above 0"),
        ("TURBOFAN_TORCH_THREADS", "-3", "at least 0"),
        ("TURBOFAN_TORCH_THREADS", "100000", "at most 1,024"),
        ("TURBOFAN_TORCH_THREADS", "two", "whole number"),
        ("TURBOFAN_LOG_LEVEL", "BOGUS", "DEBUG, INFO"),
        ("TURBOFAN_DRIFT_KS_PVALUE", "7", "at most 1"),
        ("TURBOFAN_DRIFT_KS_PVALUE", "nan", "finite number"),
        ("TURBOFAN_DRIFT_PSI_THRESHOLD", "-1", "above 0"),
        ("TURBOFAN_KPI_WARNING_MARGIN", "-inf", "finite number"),
        ("TURBOFAN_MAX_CONCURRENT_JOBS", "2.7", "whole number"),
        ("TURBOFAN_MAX_CONCURRENT_JOBS", "0", "at least 1"),
        ("TURBOFAN_HOME", "relative/registry", "absolute folder path"),
        ("TURBOFAN_EXECUTOR", "cluster", "expected local, inprocess or a Dask scheduler address"),
        ("TURBOFAN_EXECUTOR", "tcp://scheduler", "tcp://host:8786"),
        ("TURBOFAN_WORKERS", "-1", "at least 0"),
    ],
)
def test_bad_environment_variable(capsys, registry, monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    sentence = assert_refused(capsys, registry, ["models", "list"], "$" + variable, repr(value))
    assert expected in sentence


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("max_concurrent_jobs = 2.7", "max_concurrent_jobs"),
        ("max_concurrent_jobs = true", "max_concurrent_jobs"),
        ("max_file_mb = nan", "max_file_mb"),
        ("drift_ks_pvalue = 7", "drift_ks_pvalue"),
        ("drift_psi_threshold = -1", "drift_psi_threshold"),
        ('log_level = "BOGUS"', "log_level"),
        ("log_level = 10", "log_level"),
        ("torch_threads = 100000", "torch_threads"),
        ("kpi_warning_margin = inf", "kpi_warning_margin"),
        ("executor = 3", "executor"),
        ('executor = "tcp://scheduler:99999"', "executor"),
        ("workers = 1.5", "workers"),
    ],
)
def test_bad_value_in_settings_file(capsys, registry, monkeypatch, line, name):
    monkeypatch.delenv("TURBOFAN_TORCH_THREADS")  # the environment would override the file
    monkeypatch.delenv("TURBOFAN_EXECUTOR")
    settings = _write_settings(registry, line + "\n")
    assert_refused(capsys, registry, ["models", "list"], f"'{name}'", str(settings))


def test_the_environment_is_named_when_it_overrides_the_file(monkeypatch, isolated_home):
    _write_settings(isolated_home, "drift_ks_pvalue = 0.05\n")
    monkeypatch.setenv("TURBOFAN_DRIFT_KS_PVALUE", "7")
    with pytest.raises(Exception, match=r"\$TURBOFAN_DRIFT_KS_PVALUE is '7'"):
        load_settings()


def test_good_settings_still_load(monkeypatch, isolated_home):
    _write_settings(isolated_home, 'log_level = "debug"\nmax_concurrent_jobs = 2.0\nmax_file_mb = 1\n')
    monkeypatch.setenv("TURBOFAN_TORCH_THREADS", "0")
    settings = load_settings()
    assert (settings.log_level, settings.max_concurrent_jobs, settings.max_file_mb) == ("DEBUG", 2, 1.0)
    assert settings.torch_threads == 0 and settings.home == isolated_home


TELEMANOM_CASES = [
    ("z_min", "nan"),
    ("p", "nan"),
    ("min_delta", "inf"),
    ("lr", "nan"),
    ("smoothing_perc", "nan"),
    ("seed", "1e23"),
    ("seed", "-1"),
    ("lstm_units", "abc"),
    ("lstm_units", "80,nan"),
    ("epochs", "2.5"),
    ("epochs", "99999999999999999999999"),
    ("auto_scale", "maybe"),
]
TRANSFORMER_CASES = [("quantiles", "abc"), ("quantiles", "0.1,nan,0.9"), ("lr", "nan"), ("dropout", "-inf")]


@pytest.mark.parametrize(
    ("plugin", "name", "value"),
    [("telemanom", n, v) for n, v in TELEMANOM_CASES] + [("transformer", n, v) for n, v in TRANSFORMER_CASES],
)
def test_bad_model_setting_is_refused_before_training(capsys, registry, tmp_path, plugin, name, value):
    data = small_train_file(tmp_path)
    sensor = ["--sensor", "s_2"] if plugin == "telemanom" else []
    argv = ["train", str(data), "--model", plugin, *sensor, "--set", f"{name}={value}", "--set", "epochs=1"]
    if name == "epochs":
        argv = argv[:-2]
    assert_refused(capsys, registry, argv, f"'{name}'")


@pytest.mark.parametrize(
    "argv",
    [
        ["models", "show", "9223372036854775808"],
        ["models", "show", "-1"],
        ["models", "show", "abc"],
        ["models", "delete", "99999999999999999999"],
        ["report", "9223372036854775808"],
        ["validate", "9223372036854775808"],
    ],
)
def test_numeric_cli_argument_out_of_range(capsys, registry, argv):
    sentence = assert_refused(capsys, registry, argv, "version id", repr(argv[-1]))
    assert "whole number" in sentence


def test_seed_argument_out_of_range(capsys, registry, tmp_path):
    data = small_train_file(tmp_path)
    argv = ["train", str(data), "--model", "telemanom", "--sensor", "s_2", "--seed", "1" + "0" * 23]
    assert_refused(capsys, registry, argv, "seed")


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("--val-fraction", "nan", "validation fraction"),
        ("--val-fraction", "inf", "validation fraction"),
        ("--test-fraction", "nan", "test_fraction"),
    ],
)
def test_fraction_arguments_refuse_nan_and_inf(capsys, registry, tmp_path, option, value, named):
    data = small_train_file(tmp_path)
    argv = ["train", str(data), "--model", "telemanom", "--sensor", "s_2", option, value]
    assert_refused(capsys, registry, argv, named, "nan" if value == "nan" else "inf")


@pytest.mark.parametrize("value", ["0", "-5", "1e9", "99999999999999999999999"])
def test_forecast_horizon_out_of_range(capsys, registry, tmp_path, value):
    data = small_train_file(tmp_path)
    argv = ["forecast", str(data), "--version", "1", "--horizon", value]
    assert_refused(capsys, registry, argv, "horizon", repr(value))


@pytest.mark.parametrize(
    "argv",
    [["models", "list", "--offset", "9223372036854775808"], ["models", "cleanup", "--keep", "1" + "0" * 20]],
)
def test_page_arguments_beyond_64_bits_exit_2(capsys, registry, argv):
    with pytest.raises(SystemExit) as refused:  # argparse's own refusal, with its usage line
        run_cli(capsys, *argv)
    assert refused.value.code == 2
    assert "expected at most" in capsys.readouterr().err
