"""Settings: a TOML file in the user config dir, overridden by ``TURBOFAN_*`` environment variables.

Precedence (last wins): built-in defaults, ``settings.toml`` in :func:`config_dir`, environment.
``TURBOFAN_HOME`` decides where the registry and artifacts live; ``registry`` (``TURBOFAN_REGISTRY``)
names another registry: a folder, ``sqlite:///folder/registry.db`` or ``postgresql://user@host:port/db``.
A password never belongs in this file: PostgreSQL reads it from ``PGPASSWORD`` or ``~/.pgpass``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import platformdirs

from turbofan_desktop.errors import ConfigError

APP_NAME = "turbofan-desktop"
ENV_PREFIX = "TURBOFAN_"


def config_dir() -> Path:
    """Folder of ``settings.toml``; ``TURBOFAN_CONFIG_DIR`` overrides the platform default."""
    override = os.environ.get(ENV_PREFIX + "CONFIG_DIR")
    return Path(override) if override else Path(platformdirs.user_config_dir(APP_NAME))


def default_home() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


DEFAULT_MAX_FILE_MB = 512.0  # the file-size limit when no settings are passed (data.read_dataset)


@dataclass(frozen=True)
class Settings:
    """All user-tunable settings. Field names are the TOML keys; ``TURBOFAN_<NAME>`` overrides each."""

    home: Path = field(default_factory=default_home)
    max_file_mb: float = DEFAULT_MAX_FILE_MB
    max_concurrent_jobs: int = 1
    log_level: str = "INFO"
    drift_psi_threshold: float = 0.25
    drift_ks_pvalue: float = 0.01
    kpi_warning_margin: float = 0.2
    torch_threads: int = 0  # 0 = one per available core (per worker process: the cores shared out)
    # where model jobs run: "local" worker processes, "inprocess" (a thread), or a Dask scheduler
    # "tcp://host:port" (the [cluster] extra); ``workers`` local processes, 0 = from the core count
    executor: str = "local"
    workers: int = 0
    # a Dask job whose worker is lost (killed, out of memory, its machine gone) runs again this often
    retries: int = 1
    registry: str = ""  # "" = the registry folder in ``home``; else a folder or a URL (module docstring)
    # a server registry's artifacts: "" = inside its database; else a folder (a network mount) or an
    # fsspec URL (s3://bucket/models, needs fsspec and its backend); a folder registry keeps its own
    artifacts: str = ""
    # the local cache of a server registry's artifacts (home/cache): least recently used folders go
    # past this size, and any unused this many days (0 = no limit); `registry cache prune`
    cache_max_mb: float = 4096.0
    cache_max_days: float = 90.0
    # the registry keeps the data its versions used (``datasets``) up to this size; 0 = keep none
    dataset_store_mb: float = 2048.0
    # when set, every training logs its run there as it goes (``[mlflow]`` extra); failures only warn
    mlflow_tracking_uri: str = ""

    @property
    def registry_location(self) -> str | Path:
        """What the workspace opens: the ``registry`` setting, else the ``home`` folder."""
        return self.registry or self.home

    @property
    def registry_path(self) -> Path:
        return self.home / "registry.db"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "turbofan-desktop.log"


# -- checking: every setting from every source goes through check_setting once ----------------------
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Largest whole number a setting may hold: SQLite, numpy and torch all stop at signed 64 bits.
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Rule:
    """The type and range of one setting; ``low_open`` excludes ``minimum`` itself."""

    kind: type
    minimum: float | None = None
    maximum: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] | None = None

    def expected(self) -> str:
        if self.kind is Path:
            return "an absolute folder path"
        if self.choices:
            return "one of " + ", ".join(self.choices)
        what = "a whole number" if self.kind is int else "a finite number"
        low = (
            None
            if self.minimum is None
            else f"{'above' if self.low_open else 'at least'} {_bound(self.minimum)}"
        )
        high = None if self.maximum is None else f"at most {_bound(self.maximum)}"
        bounds = " and ".join(b for b in (low, high) if b)
        return f"{what} {bounds}" if bounds else what


def _bound(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


RULES: dict[str, Rule] = {
    "home": Rule(Path),
    "max_file_mb": Rule(float, minimum=0.0, maximum=1024.0 * 1024.0, low_open=True),
    "max_concurrent_jobs": Rule(int, minimum=1, maximum=64),
    "log_level": Rule(str, choices=LOG_LEVELS),
    "drift_psi_threshold": Rule(float, minimum=0.0, maximum=100.0, low_open=True),
    "drift_ks_pvalue": Rule(float, minimum=0.0, maximum=1.0, low_open=True),
    "kpi_warning_margin": Rule(float, minimum=0.0, maximum=100.0),
    # libgomp aborts the process on absurd pool sizes (100000); 0 = one per usable core
    "torch_threads": Rule(int, minimum=0, maximum=1024),
    "executor": Rule(str),  # checked in check_setting
    "workers": Rule(int, minimum=0, maximum=256),
    "retries": Rule(int, minimum=0, maximum=10),
    # a folder or URL; checked for a password in check_setting
    "registry": Rule(str),
    "artifacts": Rule(str),
    "cache_max_mb": Rule(float, minimum=0.0, maximum=1024.0 * 1024.0 * 1024.0),
    "cache_max_days": Rule(float, minimum=0.0, maximum=36500.0),
    "dataset_store_mb": Rule(float, minimum=0.0, maximum=1024.0 * 1024.0 * 1024.0),
    "mlflow_tracking_uri": Rule(str),
}


def _number(raw: object) -> float | int | None:
    """A TOML number, or the number a string spells; None for anything else (booleans included)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            return None
    return None


def check_setting(name: str, raw: object, source: str) -> object:
    """``raw`` converted to the setting's type and checked against its range, or one ConfigError
    sentence naming the setting and where it came from. NaN and infinity never pass."""
    rule = RULES[name]

    def refuse() -> ConfigError:
        return ConfigError(f"Setting '{name}' from {source} is {raw!r}; expected {rule.expected()}.")

    if rule.kind is Path:
        if not isinstance(raw, str) or not raw.strip():
            raise refuse()
        folder = Path(raw.strip()).expanduser()
        if not folder.is_absolute():
            raise refuse()
        return folder
    if name == "executor":
        return executor_value(raw, source)
    if rule.kind is str:
        if not isinstance(raw, str):
            raise refuse()
        if name == "registry" and url_has_password(raw):
            raise ConfigError(
                f"Setting 'registry' from {source} contains a password; remove it from the URL and put it in "
                "~/.pgpass or the PGPASSWORD environment variable instead."
            )
        value = raw.strip().upper() if rule.choices else raw
        if rule.choices and value not in rule.choices:
            raise refuse()
        return value
    number = _number(raw)
    if number is None or not math.isfinite(number):
        raise refuse()
    if rule.kind is int:
        if isinstance(number, float) and not number.is_integer():
            raise refuse()
        number = int(number)
    else:
        number = float(number)
    if rule.minimum is not None and (number < rule.minimum or (rule.low_open and number == rule.minimum)):
        raise refuse()
    if rule.maximum is not None and number > rule.maximum:
        raise refuse()
    return number


EXECUTOR_KINDS = ("local", "inprocess")
# the Dask scheduler addresses the executor setting accepts (tls:// with Dask's TLS settings)
DASK_SCHEMES = ("tcp://", "tls://")


def executor_value(raw: object, source: str) -> str:
    """The ``executor`` setting: "local", "inprocess" or a Dask scheduler's tcp://host:port (or
    tls://host:port, with Dask's own TLS settings)."""
    text = raw.strip() if isinstance(raw, str) else ""
    if text.lower() in EXECUTOR_KINDS:
        return text.lower()
    scheme = next((s for s in DASK_SCHEMES if text.lower().startswith(s)), None)
    host, _, port = text[len(scheme) :].rpartition(":") if scheme else ("", "", "")
    if host and port.isdigit() and 0 < int(port) < 65536:
        return text
    raise ConfigError(
        f"Setting 'executor' from {source} is {raw!r}; expected local, inprocess or a Dask scheduler "
        "address like tcp://host:8786 (or tls://host:8786)."
    )


def load_settings(env: dict[str, str] | None = None, config_file: Path | None = None) -> Settings:
    """Read the settings file and the environment; unknown or malformed values raise ConfigError."""
    env = dict(os.environ) if env is None else env
    path = config_file or config_dir() / "settings.toml"
    fields = {f.name for f in dataclasses.fields(Settings)}
    values: dict[str, tuple[object, str]] = {}  # name -> (raw value, where it came from)

    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: the settings file is not valid TOML ({exc}).") from None
        except OSError as exc:
            raise ConfigError(f"{path}: the settings file cannot be read ({exc.strerror or exc}).") from None
        for key, raw in data.items():
            if key not in fields:
                raise ConfigError(f"{path}: unknown setting '{key}' (known: {', '.join(sorted(fields))}).")
            values[key] = (raw, str(path))

    for name in fields:
        env_key = ENV_PREFIX + name.upper()
        if env.get(env_key, "") != "":
            values[name] = (env[env_key], f"${env_key}")

    resolved = {name: check_setting(name, raw, source) for name, (raw, source) in values.items()}
    return Settings(**resolved)


def save_settings(updates: dict[str, object], config_file: Path | None = None) -> Path:
    """Write ``updates`` (setting name -> value) into the settings file, keeping its other settings;
    each value is checked like one read from the file (ConfigError names the first bad one)."""
    path = config_file or config_dir() / "settings.toml"
    fields = {f.name for f in dataclasses.fields(Settings)}
    current: dict[str, object] = {}
    if path.is_file():
        try:
            current = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            raise ConfigError(
                f"{path}: the settings file cannot be updated, it does not read ({exc})."
            ) from None
    for name, value in updates.items():
        if name not in fields:
            raise ConfigError(f"Unknown setting '{name}' (known: {', '.join(sorted(fields))}).")
        raw = str(value) if isinstance(value, Path) else value
        check_setting(name, raw, "the settings dialog")
        current[name] = raw
    lines = [f"{name} = {_toml_value(value)}" for name, value in current.items()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: the settings file cannot be written ({exc.strerror or exc}).") from None
    return path


def _toml_value(value: object) -> str:
    """A scalar setting in TOML (every setting is text, a whole number or a number)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # JSON's string escapes are TOML's too


def url_has_password(location: str) -> bool:
    """Whether a registry URL carries a password (``user:secret@host`` or ``?password=``)."""
    if "://" not in location:
        return False
    parsed = urlparse(location)
    return parsed.password is not None or "password=" in parsed.query.lower()
