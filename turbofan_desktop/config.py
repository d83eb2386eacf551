"""Settings: a TOML file in the user config dir, overridden by ``TURBOFAN_*`` environment variables.

Precedence (last wins): built-in defaults, ``settings.toml`` in :func:`config_dir`, environment.
``TURBOFAN_HOME`` decides where the registry and artifacts live.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

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
    torch_threads: int = 0  # 0 = one per available core

    @property
    def registry_path(self) -> Path:
        return self.home / "registry.db"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "turbofan-desktop.log"


def _coerce(name: str, raw: object, target_type: type, source: str) -> object:
    try:
        if target_type is Path:
            return Path(str(raw)).expanduser()
        if target_type is bool:
            return str(raw).strip().lower() in {"1", "true", "yes", "on"}
        return target_type(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"Setting '{name}' from {source} is {raw!r}, expected a {target_type.__name__}."
        ) from None


def load_settings(env: dict[str, str] | None = None, config_file: Path | None = None) -> Settings:
    """Read the settings file and the environment; unknown or malformed values raise ConfigError."""
    env = dict(os.environ) if env is None else env
    path = config_file or config_dir() / "settings.toml"
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    types = {"home": Path, "max_file_mb": float, "max_concurrent_jobs": int, "log_level": str}
    values: dict[str, object] = {}

    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: the settings file is not valid TOML ({exc}).") from None
        for key, raw in data.items():
            if key not in fields:
                raise ConfigError(f"{path}: unknown setting '{key}' (known: {', '.join(fields)}).")
            values[key] = raw

    for name in fields:
        env_key = ENV_PREFIX + name.upper()
        if env_key in env and env[env_key] != "":
            values[name] = env[env_key]

    resolved = {}
    for name, raw in values.items():
        target_type = types.get(name) or type(fields[name].default)
        source = f"${ENV_PREFIX}{name.upper()}" if ENV_PREFIX + name.upper() in env else str(path)
        resolved[name] = _coerce(name, raw, target_type, source)
    settings = Settings(**resolved)
    if settings.max_file_mb <= 0:
        raise ConfigError("Setting 'max_file_mb' must be a positive number of megabytes.")
    if settings.max_concurrent_jobs < 1:
        raise ConfigError("Setting 'max_concurrent_jobs' must be at least 1.")
    return settings
