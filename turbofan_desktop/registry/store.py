"""The model registry: versions, stages, datasets, runs, feedback and KPI history.

Every write is one transaction through :func:`write_transaction` (``BEGIN IMMEDIATE`` on SQLite);
reads are single statements. A :class:`Registry` owns one database object with a connection per
thread, so one instance may be shared by the UI thread and workers.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import os
import socket
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import peewee

from turbofan_desktop.data.lineage import LINEAGE_FIELDS, DataLineage
from turbofan_desktop.errors import (
    ConfigError,
    DamagedRegistryError,
    NotFoundError,
    PasswordRequiredError,
    ReadOnlyRegistryError,
    RegistryError,
    TurbofanError,
    ValidationRequiredError,
)
from turbofan_desktop.registry import db as dbmod
from turbofan_desktop.registry import storage
from turbofan_desktop.registry.artifacts import ArtifactStore, DatabaseArtifactStore
from turbofan_desktop.registry.migrations import LATEST_VERSION, migrate, schema_version
from turbofan_desktop.registry.records import (
    PROVENANCE_COLUMNS,
    RECORD_COLUMN_NAMES,
    CheckReport,
    DatasetRecord,
    LabelRecord,
    MetricPoint,
    RunRecord,
    StatusRow,
    TrainingProvenance,
    VersionRecord,
    provenance_from_columns,
    provenance_to_row,
    record_columns,
)
from turbofan_desktop.registry.schema import (
    FINAL_RUN_STATUSES,
    STAGES,
    VERSION_STATUSES,
    Tables,
    bind_tables,
)

log = logging.getLogger(__name__)

DB_FILE = "registry.db"
ARTIFACTS_DIR = "artifacts"
MAX_LIST_LIMIT = 10_000


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def os_user() -> str | None:
    """The OS account running this program (recorded as who made a version or run)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name (a container without /etc/passwd entry)
        return None


def server_cache_folder(url: str, cache_root: Path) -> Path:
    """The local folder for a server registry's unpacked artifacts: one per server database, named
    by a hash of the password-free URL (so no credential ends up in a path)."""
    key = hashlib.sha256(dbmod.redact_url(url).encode("utf-8")).hexdigest()[:16]
    return Path(cache_root).expanduser() / "server-registries" / key


def _server_writable(db: peewee.Database) -> bool:
    """Whether the connected database user may register versions: True for a database without the
    registry's tables yet (creating them is the test), else its INSERT right on the versions table."""
    row = db.execute_sql(
        "SELECT to_regclass('model_versions') IS NULL OR has_table_privilege('model_versions', 'INSERT')"
    ).fetchone()
    return bool(row[0])


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise ConfigError(f"Unknown {name} '{value}' (expected one of: {', '.join(allowed)}).")


def _lineage_of(lineage: Any) -> DataLineage:
    """A DataLineage (anything with ``to_dict``) or a mapping with the same keys, checked."""
    return DataLineage.from_dict(lineage.to_dict() if hasattr(lineage, "to_dict") else lineage)


def cleanup_candidates(rows: Iterable[Any], keep: int) -> list[Any]:
    """The cleanup rule, written once: of rows with ``plugin``, ``target``, ``version``, ``stage`` and
    ``status``, those ``cleanup(keep=keep)`` deletes: all but the newest ``keep`` per (plugin,
    target); production, staging and still-training versions always stay."""
    doomed = []
    seen: dict[tuple[str, str], int] = {}
    for row in sorted(rows, key=lambda r: (r.plugin, r.target, -r.version)):
        key = (row.plugin, row.target)
        rank = seen.get(key, 0)
        seen[key] = rank + 1
        if rank < keep or row.stage in ("production", "staging") or row.status == "training":
            continue
        doomed.append(row)
    return doomed


class Registry:
    """A registry: a folder (``registry.db`` plus ``artifacts/``, and ``quarantine/`` after repairs),
    or a PostgreSQL database whose artifacts live in the database, with ``home`` a local cache folder.
    """

    read_only = False  # set by open() for a folder this process cannot write

    def __init__(
        self,
        home: Path,
        database: peewee.Database,
        *,
        location: str | None = None,
        artifacts: ArtifactStore | None = None,
    ):
        self.home = Path(home)
        self.db = database
        # what the user named, password removed: the only form of the location messages may show
        self.location = dbmod.redact_url(location) if location is not None else str(self.home)
        # this registry's own model classes, bound to its own database: two registries in one
        # process never share a binding (see :func:`.schema.bind_tables`)
        self.tables: Tables = bind_tables(database)
        self._version_select: str | None = None  # built on first use, see _select_sql
        self.artifacts = artifacts or ArtifactStore(self.home / ARTIFACTS_DIR)

    @property
    def is_server(self) -> bool:
        return dbmod.is_postgres(self.db)

    # -- opening --------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        location: Path | str,
        *,
        create: bool = True,
        cache_root: Path | str | None = None,
        password: str | None = None,
        read_only: bool = False,
        artifacts: str | Path | None = None,
    ) -> Registry:
        """Open (and create or migrate) the registry at ``location``: a folder (the workspace passes
        the settings' home), a ``sqlite:///folder/registry.db`` URL, or ``postgresql://user@host/db``.
        ``create=False`` refuses a folder that does not exist (a mistyped ``--registry``); a server
        database must exist (its tables are created). ``cache_root`` holds a server registry's
        unpacked artifacts (default: the platform's user cache folder). ``password``: a server's,
        typed by the user when it asked (:class:`~turbofan_desktop.errors.PasswordRequiredError`).
        ``read_only``: a server registry opened for reading only (also chosen when the database user
        may not insert versions); every write is then refused with one sentence. ``artifacts``: a
        folder or fsspec URL for a server registry's artifacts instead of its database
        (:mod:`.external_artifacts`); a folder registry keeps them in its own folder.
        """
        text = str(location)
        if dbmod.is_server_url(text):
            return cls._open_server(text, cache_root, password, read_only=read_only, artifacts=artifacts)
        if artifacts:
            log.info("the artifacts setting is for server registries; %s keeps its own", text)
        if dbmod.is_url(text):
            scheme = text.split("://", 1)[0].lower()
            if scheme != "sqlite":
                dbmod.open_database(text)  # raises the unknown-scheme sentence
            db_file = dbmod.sqlite_file(text).expanduser()
            if db_file.name != DB_FILE:
                raise ConfigError(
                    f"The registry URL '{dbmod.redact_url(text)}' must name a file called {DB_FILE} "
                    "(its folder holds the artifacts beside it)."
                )
            home = db_file.parent
        else:
            home = Path(text).expanduser()
        if not create and not home.is_dir():
            raise NotFoundError(f"The registry folder '{home}' does not exist.")
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"Cannot create the registry folder '{home}': {exc.strerror}.") from None
        read_only = not storage.folder_is_writable(home)
        if read_only and not (home / DB_FILE).is_file():
            raise ReadOnlyRegistryError(
                f"The registry folder '{home}' is read-only and holds no registry yet; choose a writable "
                "folder (--registry)."
            )
        database = dbmod.open_read_only(home / DB_FILE) if read_only else dbmod.open_database(home / DB_FILE)
        registry = cls(home, database)
        registry.read_only = read_only
        try:
            if read_only:
                storage.require_current_schema(database, LATEST_VERSION)
            else:
                migrate(database)
        except TurbofanError:
            database.close()  # a refused migration or a read-only refusal leaves no connection behind
            raise
        except peewee.DatabaseError as exc:
            database.close()
            raise RegistryError(f"'{home / DB_FILE}' is not a usable registry database ({exc}).") from None
        if not read_only:
            registry.artifacts.ensure()
        return registry

    @classmethod
    def _open_server(
        cls,
        url: str,
        cache_root: Path | str | None,
        password: str | None = None,
        *,
        read_only: bool = False,
        artifacts: str | Path | None = None,
    ) -> Registry:
        if cache_root is None:
            import platformdirs

            cache_root = platformdirs.user_cache_dir("turbofan-desktop")
        home = server_cache_folder(url, Path(cache_root))
        database = dbmod.open_database(url, password=password)
        try:
            database.connect()
        except peewee.OperationalError as exc:
            if dbmod.asks_for_password(exc):
                raise PasswordRequiredError(
                    f"The registry {dbmod.redact_url(url)} asks for a password"
                    + (" and refused the one given." if password or dbmod.has_password(url) else ".")
                    + " Type it when asked, or put it in ~/.pgpass or the PGPASSWORD environment variable.",
                    url=dbmod.redact_url(url),
                    refused=bool(password or dbmod.has_password(url)),
                ) from None
            # psycopg's message names host and port, never the password
            raise RegistryError(
                f"Cannot connect to the registry {dbmod.redact_url(url)}: {str(exc).strip().splitlines()[0]}"
            ) from None
        if artifacts:
            from turbofan_desktop.registry.external_artifacts import ExternalArtifactStore, object_store

            try:
                objects = object_store(artifacts)
            except TurbofanError:
                database.close()
                raise
            store: ArtifactStore = ExternalArtifactStore(home / ARTIFACTS_DIR, database, objects)
        else:
            store = DatabaseArtifactStore(home / ARTIFACTS_DIR, database)
        registry = cls(home, database, location=url, artifacts=store)
        registry.read_only = read_only or not _server_writable(database)
        if registry.read_only:
            found = schema_version(database)
            if found != LATEST_VERSION:
                database.close()
                raise ReadOnlyRegistryError(
                    f"The registry {registry.location} needs an upgrade (schema version {found} to "
                    f"{LATEST_VERSION}), but it is open read-only; open it once as a user who may change it."
                )
        else:
            registry._migrate(registry.location)
        try:
            registry.artifacts.ensure()
        except OSError as exc:
            database.close()
            raise RegistryError(
                f"Cannot create the artifact cache folder '{home}': {exc.strerror}."
            ) from None
        return registry

    def _migrate(self, name: str) -> None:
        try:
            migrate(self.db)
        except peewee.DatabaseError as exc:
            self.db.close()
            raise RegistryError(
                f"'{name}' is not a usable registry database ({dbmod.redact_url(str(exc))})."
            ) from None
        except TurbofanError:
            self.db.close()  # a refused migration leaves no connection behind
            raise

    def identity(self) -> tuple[str, ...]:
        """What makes two handles the same registry, however they were named: a SQLite file by its
        device and inode (a folder, a ``sqlite:///`` URL and a symbolic link agree), a server
        database by the server's system identifier (else its address and port) and database name."""
        if not self.is_server:
            try:
                stat = self.path.stat()
            except OSError:
                return ("sqlite", os.path.realpath(self.path))
            return ("sqlite", str(stat.st_dev), str(stat.st_ino))
        try:
            server = str(
                self.db.execute_sql("SELECT system_identifier FROM pg_control_system()").fetchone()[0]
            )
        except peewee.DatabaseError:  # a role without the right to read it: the address is the next best
            server = "{}:{}".format(
                *self.db.execute_sql("SELECT inet_server_addr(), inet_server_port()").fetchone()
            )
        database = self.db.execute_sql("SELECT current_database()").fetchone()[0]
        return ("postgresql", server, str(database))

    def close(self) -> None:
        """Close this thread's connection (other threads' connections close with their thread)."""
        if not self.db.is_closed():
            self.db.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def path(self) -> Path:
        return self.home / DB_FILE

    def require_writable(self, *, intact: bool = False) -> None:
        """ReadOnlyRegistryError (one sentence) when this registry was opened read-only; with
        ``intact``, DamagedRegistryError when SQLite finds damage (before long work that will write)."""
        if self.read_only and self.is_server:
            raise ReadOnlyRegistryError(
                f"The registry {self.location} is open read-only (this database user may not change it), "
                "so training, validating, promoting and deleting are refused; ask its owner for write "
                "rights or use your own registry (--registry)."
            )
        if self.read_only:
            raise ReadOnlyRegistryError(storage.read_only_sentence(self.home))
        if intact:
            damage = storage.integrity_problems(self.db)
            if damage:
                raise DamagedRegistryError(storage.damaged_sentence(self.path, "; ".join(damage)))

    def _write(self, work: Callable[[], Any]) -> Any:
        self.require_writable()
        return dbmod.write_transaction(self.db, work)

    # -- datasets -------------------------------------------------------------------------------
    def record_dataset(self, lineage: Any) -> int:
        """Store a dataset's lineage once per (data_hash, source); returns its id."""
        t = self.tables
        data = _lineage_of(lineage).to_dict()  # the columns are named after DataLineage's fields
        values = {name: data[name] for name in LINEAGE_FIELDS}

        def work() -> int:
            # two programs recording the same data at once: the second waits and finds the first's row
            # (SQLite's write lock does this already; PostgreSQL would refuse the second insert)
            dbmod.lock_key(self.db, "dataset", data["data_hash"], data["source"])
            existing = t.DatasetRow.get_or_none(
                (t.DatasetRow.data_hash == data["data_hash"]) & (t.DatasetRow.source == data["source"])
            )
            if existing is not None:
                return existing.id
            return t.DatasetRow.create(**values, created=utc_now()).id

        return self._write(work)

    def get_dataset(self, dataset_id: int) -> DatasetRecord:
        found = self._datasets([dataset_id])
        if dataset_id not in found:
            raise NotFoundError(f"Dataset {dataset_id} does not exist in the registry.")
        return found[dataset_id]

    def _datasets(self, ids: list[int]) -> dict[int, DatasetRecord]:
        # plain SQL with the fields' own decoding: building the peewee query cost more than running it
        # (it is asked after every registration and every page of versions)
        if not ids:
            return {}
        fields = self.tables.DatasetRow._meta.fields
        names = ("id", *LINEAGE_FIELDS, "created")
        columns = ", ".join(f'"{fields[name].column_name}"' for name in names)
        marks = ", ".join([self.db.param] * len(ids))
        rows = self.db.execute_sql(f'SELECT {columns} FROM "datasets" WHERE "id" IN ({marks})', list(ids))
        found = {}
        for raw in rows.fetchall():
            values = {name: fields[name].python_value(value) for name, value in zip(names, raw, strict=True)}
            found[values["id"]] = DatasetRecord(
                id=values["id"],
                lineage=DataLineage.from_dict({name: values[name] for name in LINEAGE_FIELDS}),
                created=values["created"],
            )
        return found

    def find_dataset(self, data_hash: str) -> DatasetRecord | None:
        """The newest stored lineage of data with this content hash, or None: names the file a
        metric was computed on."""
        t = self.tables
        row = (
            t.DatasetRow.select(t.DatasetRow.id)
            .where(t.DatasetRow.data_hash == data_hash)
            .order_by(t.DatasetRow.id.desc())
            .first()
        )
        return self._datasets([row.id]).get(row.id) if row is not None else None

    # -- training runs --------------------------------------------------------------------------
    def start_run(self, *, plugin: str, target: str, config: dict, dataset_id: int | None) -> int:
        """Record that training started (status ``running``, owned by this process)."""
        t = self.tables

        def work() -> int:
            if (
                dataset_id is not None
                and not t.DatasetRow.select().where(t.DatasetRow.id == dataset_id).exists()
            ):
                raise NotFoundError(f"Dataset {dataset_id} does not exist in the registry.")
            return t.TrainingRun.create(
                plugin=plugin,
                target=target,
                config=dict(config),
                dataset=dataset_id,
                status="running",
                started=utc_now(),
                pid=os.getpid(),
                host=socket.gethostname(),
                os_user=os_user(),
            ).id

        return self._write(work)

    def finish_run(self, run_id: int, *, status: str, message: str = "", epochs_done: int = 0) -> None:
        t = self.tables
        _choice("run status", status, FINAL_RUN_STATUSES)

        def work() -> None:
            updated = (
                t.TrainingRun.update(
                    status=status, message=message, epochs_done=int(epochs_done), finished=utc_now()
                )
                .where(t.TrainingRun.id == run_id)
                .execute()
            )
            if not updated:
                raise NotFoundError(f"Training run {run_id} does not exist in the registry.")

        self._write(work)

    def get_run(self, run_id: int) -> RunRecord:
        t = self.tables
        row = t.TrainingRun.get_or_none(t.TrainingRun.id == run_id)
        if row is None:
            raise NotFoundError(f"Training run {run_id} does not exist in the registry.")
        return _run_record(row)

    def list_runs(self, *, status: str | None = None, limit: int = 100) -> list[RunRecord]:
        t = self.tables
        query = t.TrainingRun.select().order_by(t.TrainingRun.id.desc()).limit(limit)
        if status is not None:
            query = query.where(t.TrainingRun.status == status)
        return [_run_record(row) for row in query]

    # -- versions -------------------------------------------------------------------------------
    def register_version(
        self,
        *,
        run_id: int | None,
        plugin: str,
        target: str,
        dataset_id: int,
        config: dict,
        history: list[dict],
        metrics: dict,
        validation_performed: bool,
        validation_metrics: dict | None,
        validation_data_hash: str | None,
        training_seconds: float,
        library_versions: dict,
        write_artifact: Callable[[Path], None],
        provenance: TrainingProvenance | None = None,
    ) -> VersionRecord:
        """Store the artifact durably, then commit the row with the next version number.

        The artifact is written and fsynced before any lock is taken (a large model must not stall
        other writers); the version number is allocated and the row inserted in one ``BEGIN
        IMMEDIATE`` transaction, so numbers per (plugin, target) stay unique and contiguous. If the
        row does not commit, the artifact is removed again. ``provenance`` records how it was trained.
        """
        t = self.tables
        if not plugin or not target:
            raise ConfigError("A model version needs a plugin name and a target.")
        staged = self.artifacts.stage(write_artifact)
        who, where = os_user(), socket.gethostname()

        def missing_reference() -> NotFoundError | None:
            # only asked after a FOREIGN KEY failure, after the transaction rolled back (PostgreSQL
            # refuses every statement after a failed one in a transaction): the happy path lets the
            # database check the references, with no savepoint round trips
            if not t.DatasetRow.select().where(t.DatasetRow.id == dataset_id).exists():
                return NotFoundError(f"Dataset {dataset_id} does not exist in the registry.")
            if run_id is not None and not t.TrainingRun.select().where(t.TrainingRun.id == run_id).exists():
                return NotFoundError(f"Training run {run_id} does not exist in the registry.")
            return None

        def insert() -> int:
            # numbers are read and written under one lock per (plugin, target) (SQLite: the write lock)
            dbmod.lock_key(self.db, "version", plugin, target)
            self.artifacts.commit(staged)  # a server registry stores the blob in this same transaction
            # the next number is computed by the INSERT itself: one round trip, not a SELECT and an INSERT
            next_number = t.ModelVersion.select(
                peewee.fn.COALESCE(peewee.fn.MAX(t.ModelVersion.version), 0) + 1
            ).where((t.ModelVersion.plugin == plugin) & (t.ModelVersion.target == target))
            now = utc_now()
            row_id = t.ModelVersion.insert(
                plugin=plugin,
                target=target,
                version=next_number,
                stage="none",
                status="trained",
                created=now,
                artifact_path=staged.name,
                artifact_sha256=staged.sha256,
                config=dict(config),
                history=list(history),
                metrics=dict(metrics),
                validation_performed=bool(validation_performed),
                validation_metrics=dict(validation_metrics) if validation_metrics is not None else None,
                validation_data_hash=validation_data_hash,
                training_seconds=float(training_seconds),
                library_versions=dict(library_versions),
                dataset=dataset_id,
                run=run_id,
                os_user=who,
                host=where,
            ).execute()
            if provenance is not None and provenance != TrainingProvenance():  # no row: nothing recorded
                t.ProvenanceRow.insert(version=row_id, **provenance_to_row(provenance)).execute()
            if validation_performed and validation_metrics is not None:
                t.MetricRecord.create(
                    version=row_id,
                    kind="validation",
                    metrics=dict(validation_metrics),
                    data_hash=validation_data_hash,
                    created=now,
                )
            return int(row_id)

        try:
            version_id = self._write(insert)
        except peewee.IntegrityError:
            self.artifacts.discard(staged)
            problem = missing_reference()
            if problem is None:
                raise
            raise problem from None
        except BaseException:
            self.artifacts.discard(staged)
            raise
        self.artifacts.release(staged)
        return self.get(version_id)

    def _records(self, where: str, params: list[Any]) -> list[VersionRecord]:
        """Read the versions :meth:`_select_sql` + ``where`` names and attach each row's lineage (each
        dataset decoded once); the provenance columns come with the row, from the joined table."""
        rows = self.db.execute_sql(f"{self._select_sql()} {where}", params).fetchall()
        if not rows:
            return []
        width = len(RECORD_COLUMN_NAMES)
        dataset_at = RECORD_COLUMN_NAMES.index("dataset_id")
        lineages = {
            dataset_id: {"dataset_id": dataset_id, **record.lineage.to_dict()}
            for dataset_id, record in self._datasets(list({row[dataset_at] for row in rows})).items()
        }
        root = self.artifacts.root
        return [
            VersionRecord.from_columns(
                row[:width], lineages[row[dataset_at]], root, provenance_from_columns(row[width:])
            )
            for row in rows
        ]

    def _select_sql(self) -> str:
        """``SELECT`` the record columns of each version, then its provenance columns (NULL when it
        has none), ``FROM model_versions AS t1`` joined with its provenance.

        Peewee takes about a millisecond to build this 45-column select, as long as reading a page of
        100 versions, and it never changes: it is built once per registry, and readers add a
        ``WHERE`` on ``"t1"``.
        """
        if self._version_select is None:
            versions, provenance = self.tables.ModelVersion, self.tables.ProvenanceRow
            columns = [getattr(provenance, name) for name in PROVENANCE_COLUMNS]
            query = versions.select(*record_columns(versions), *columns).join(
                provenance, peewee.JOIN.LEFT_OUTER, on=(provenance.version == versions.id)
            )
            sql, params = query.sql()
            if params or ' FROM "model_versions" AS "t1" ' not in sql:  # peewee names the first table t1
                raise RegistryError(f"Unexpected version query from peewee: {sql[-160:]}")
            self._version_select = sql
        return self._version_select

    def get(self, version_id: int) -> VersionRecord:
        found = self._records(f'WHERE "t1"."id" = {self.db.param}', [version_id])
        if not found:
            raise NotFoundError(f"Model version {version_id} does not exist in the registry.")
        return found[0]

    def _filtered(self, query, plugin, target, stage, status):
        t = self.tables
        _choice("stage", stage, STAGES)
        _choice("status", status, VERSION_STATUSES)
        if plugin is not None:
            query = query.where(t.ModelVersion.plugin == plugin)
        if target is not None:
            query = query.where(t.ModelVersion.target == target)
        if stage is not None:
            query = query.where(t.ModelVersion.stage == stage)
        if status is not None:
            query = query.where(t.ModelVersion.status == status)
        return query

    def list_versions(
        self,
        *,
        plugin: str | None = None,
        target: str | None = None,
        stage: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[VersionRecord]:
        """Versions matching every given filter, newest first, one page of at most ``limit``."""
        t = self.tables
        if not 1 <= int(limit) <= MAX_LIST_LIMIT:
            raise ConfigError(f"The page size must be between 1 and {MAX_LIST_LIMIT}, not {limit}.")
        if int(offset) < 0:
            raise ConfigError(f"The offset must be 0 or more, not {offset}.")
        # Page through ids first (an index walk that never reads the large JSON columns), then
        # fetch only the rows of that page.
        page = self._filtered(t.ModelVersion.select(t.ModelVersion.id), plugin, target, stage, status)
        page = page.order_by(t.ModelVersion.id.desc()).limit(int(limit)).offset(int(offset))
        page_sql, params = page.sql()
        return self._records(f'WHERE "t1"."id" IN ({page_sql}) ORDER BY "t1"."id" DESC', params)

    def count_versions(
        self,
        *,
        plugin: str | None = None,
        target: str | None = None,
        stage: str | None = None,
        status: str | None = None,
    ) -> int:
        t = self.tables
        return self._filtered(t.ModelVersion.select(), plugin, target, stage, status).count()

    # One aggregate over the versions (and the KPI history's size): a new version, a finished training,
    # a stage move, a validation, a deletion or a new KPI point each change at least one figure.
    _CHANGE_MARKER_SQL = (
        "SELECT count(*), coalesce(max(id), 0), "
        "coalesce(sum(id * (CASE stage WHEN 'none' THEN 1 WHEN 'staging' THEN 2 "
        "WHEN 'production' THEN 3 ELSE 4 END)), 0), "
        "coalesce(sum(CASE status WHEN 'trained' THEN id WHEN 'failed' THEN 2 * id ELSE 0 END), 0), "
        "coalesce(sum(CASE WHEN validation_performed THEN id ELSE 0 END), 0), "
        "(SELECT count(*) FROM metric_history) FROM model_versions"
    )

    def change_marker(self) -> tuple[int, ...]:
        """A cheap fingerprint of what the models panel shows: it differs after anyone (another
        program or machine included) registers, finishes, moves, validates or deletes a version.
        One read-only statement; callers poll it and re-read the list only when it changed."""
        row = self.db.execute_sql(self._CHANGE_MARKER_SQL).fetchone()
        return tuple(int(value) for value in row)

    def latest(self, plugin: str, target: str, *, stage: str | None = None) -> VersionRecord | None:
        """The newest trained version of (plugin, target), optionally in one stage; None when none."""
        found = self.list_versions(plugin=plugin, target=target, stage=stage, status="trained", limit=1)
        return found[0] if found else None

    def production(self, plugin: str, target: str) -> VersionRecord | None:
        return self.latest(plugin, target, stage="production")

    def production_of(self, version_id: int) -> VersionRecord | None:
        """The production version of the same (plugin, target) as ``version_id``, if any."""
        record = self.get(version_id)
        return self.production(record.plugin, record.target)

    # -- artifacts ------------------------------------------------------------------------------
    def artifact_dir(self, version_id: int) -> Path:
        """The version's artifact folder, after checking its sha256 (RegistryError when it fails)."""
        record = self.get(version_id)
        self.verify_artifact(record)
        return Path(record.artifact_path).resolve()

    def verify_artifact(self, record: VersionRecord) -> None:
        if record.status != "trained" or not record.artifact_path or not record.artifact_sha256:
            raise RegistryError(
                f"Model version {record.label} has no usable artifact (status {record.status})."
            )
        try:
            name = Path(record.artifact_path).relative_to(self.artifacts.root).as_posix()
        except ValueError:
            name = record.artifact_path  # path_of refuses it with a sentence
        ok, actual = self.artifacts.verify(name, record.artifact_sha256)
        if actual is None:
            raise RegistryError(
                f"The artifact of model version {record.label} is missing ({record.artifact_path}); "
                "restore the folder from a backup or delete the version."
            )
        if not ok:
            raise RegistryError(
                f"The artifact of model version {record.label} was modified or damaged "
                f"(sha256 mismatch in {record.artifact_path}); it will not be loaded."
            )

    # -- validation and KPI history -------------------------------------------------------------
    def record_validation(self, version_id: int, *, metrics: dict, data_hash: str) -> VersionRecord:
        """Store validation metrics with the hash of the data they were computed on."""
        t = self.tables

        def work() -> None:
            now = utc_now()
            updated = (
                t.ModelVersion.update(
                    validation_performed=True,
                    validation_metrics=dict(metrics),
                    validation_data_hash=data_hash,
                )
                .where(t.ModelVersion.id == version_id)
                .execute()
            )
            if not updated:
                raise NotFoundError(f"Model version {version_id} does not exist in the registry.")
            t.MetricRecord.create(
                version=version_id, kind="validation", metrics=dict(metrics), data_hash=data_hash, created=now
            )

        self._write(work)
        return self.get(version_id)

    def record_metrics(
        self, version_id: int, *, kind: str, metrics: dict, data_hash: str | None = None
    ) -> int:
        """Append a KPI entry (e.g. ``detection`` against labels) without changing the version."""
        t = self.tables

        def work() -> int:
            if not t.ModelVersion.select().where(t.ModelVersion.id == version_id).exists():
                raise NotFoundError(f"Model version {version_id} does not exist in the registry.")
            return t.MetricRecord.create(
                version=version_id, kind=kind, metrics=dict(metrics), data_hash=data_hash, created=utc_now()
            ).id

        return self._write(work)

    def metric_history(self, version_id: int) -> list[MetricPoint]:
        """The version's KPI entries, oldest first."""
        t = self.tables
        query = (
            t.MetricRecord.select().where(t.MetricRecord.version == version_id).order_by(t.MetricRecord.id)
        )
        return [
            MetricPoint(id=r.id, kind=r.kind, metrics=r.metrics, data_hash=r.data_hash, created=r.created)
            for r in query
        ]

    # -- stages ---------------------------------------------------------------------------------
    def promote(self, version_id: int, stage: str) -> VersionRecord:
        """Move a version to ``stage``. Production needs a validated, intact, trained version; the
        previous production version of the same (plugin, target) is archived in the same transaction.
        """
        t = self.tables
        _choice("stage", stage, STAGES)
        record = self.get(version_id)
        if stage in ("staging", "production") and record.status != "trained":
            raise RegistryError(
                f"Model version {record.label} has status '{record.status}' and cannot be promoted."
            )
        if stage == "production":
            if not record.validation_performed:
                raise ValidationRequiredError(
                    f"Model version {record.label} has not been validated; validate it before promoting it "
                    "to production."
                )
            self.verify_artifact(record)

        def work() -> None:
            row = t.ModelVersion.get_or_none(t.ModelVersion.id == version_id)
            if row is None:
                raise NotFoundError(f"Model version {version_id} does not exist in the registry.")
            if row.stage == stage:
                return
            if stage == "production":
                # two promotions of one (plugin, target) at once: the second waits, then archives the
                # first (the partial unique index would otherwise refuse one of them)
                dbmod.lock_key(self.db, "version", row.plugin, row.target)
                if not row.validation_performed:  # re-read under the lock
                    raise ValidationRequiredError(f"Model version {record.label} has not been validated.")
                t.ModelVersion.update(stage="archived").where(
                    (t.ModelVersion.plugin == row.plugin)
                    & (t.ModelVersion.target == row.target)
                    & (t.ModelVersion.stage == "production")
                    & (t.ModelVersion.id != row.id)
                ).execute()
            t.ModelVersion.update(stage=stage).where(t.ModelVersion.id == version_id).execute()

        self._write(work)
        return self.get(version_id)

    # -- deletion -------------------------------------------------------------------------------
    def delete(self, version_id: int, *, force: bool = False) -> None:
        """Delete a version: first its row (with feedback and KPI history), then its artifact.

        In that order a crash leaves at worst an artifact without a row, which ``registry check``
        quarantines; never a row that names a missing artifact.
        """
        t = self.tables

        def work() -> str | None:
            row = t.ModelVersion.get_or_none(t.ModelVersion.id == version_id)
            if row is None:
                raise NotFoundError(f"Model version {version_id} does not exist in the registry.")
            if row.stage == "production" and not force:
                raise RegistryError(
                    f"Model version {row.plugin}/{row.target} v{row.version} (id {row.id}) is in production; "
                    "promote another version first or delete it with --force."
                )
            row.delete_instance()
            return row.artifact_path

        artifact = self._write(work)
        self._remove_artifact(artifact)

    def _remove_artifact(self, name: str | None) -> None:
        if not name:
            return
        try:
            self.artifacts.remove(name)
        except (OSError, RegistryError) as exc:
            log.warning("could not remove artifact %s (registry check will report it): %s", name, exc)

    def cleanup(self, *, keep: int, dry_run: bool = False) -> list[int]:
        """Delete all but the newest ``keep`` versions of each (plugin, target); versions in
        production or staging, and versions still training, are always kept (:func:`cleanup_candidates`).
        Returns the deleted ids; with ``dry_run`` the ids that would go, deleting nothing.
        """
        t = self.tables
        if int(keep) < 0:
            raise ConfigError(f"The number of versions to keep must be 0 or more, not {keep}.")

        def candidates() -> list[tuple[int, str | None]]:
            query = t.ModelVersion.select(
                t.ModelVersion.id,
                t.ModelVersion.plugin,
                t.ModelVersion.target,
                t.ModelVersion.version,
                t.ModelVersion.stage,
                t.ModelVersion.status,
                t.ModelVersion.artifact_path,
            )
            return [(row.id, row.artifact_path) for row in cleanup_candidates(query, int(keep))]

        if dry_run:
            return sorted(version_id for version_id, _ in candidates())

        def work() -> list[tuple[int, str | None]]:
            doomed = candidates()  # read again under the write lock
            ids = [version_id for version_id, _ in doomed]
            for start in range(0, len(ids), 500):
                t.ModelVersion.delete().where(t.ModelVersion.id.in_(ids[start : start + 500])).execute()
            return doomed

        doomed = self._write(work)
        for _, artifact in doomed:
            self._remove_artifact(artifact)
        return sorted(version_id for version_id, _ in doomed)

    # -- feedback -------------------------------------------------------------------------------
    def add_feedback(
        self,
        version_id: int,
        *,
        unit: Any,
        start: Any,
        end: Any,
        label: str,
        note: str = "",
        data_key: str | None = None,
    ) -> int:
        """Store a user's label for a time range of one unit (``true_anomaly``, ``false_alarm``, ...);
        ``data_key`` names the data the range is on (see ``services.feedback.data_key``)."""
        t = self.tables
        if not label:
            raise ConfigError("A feedback label must not be empty.")

        def work() -> int:
            if not t.ModelVersion.select().where(t.ModelVersion.id == version_id).exists():
                raise NotFoundError(f"Model version {version_id} does not exist in the registry.")
            return t.FeedbackLabel.create(
                version=version_id,
                unit=unit,
                start=start,
                end=end,
                label=label,
                note=note,
                created=utc_now(),
                data_key=data_key,
            ).id

        return self._write(work)

    def list_feedback(self, version_id: int) -> list[LabelRecord]:
        t = self.tables
        query = (
            t.FeedbackLabel.select().where(t.FeedbackLabel.version == version_id).order_by(t.FeedbackLabel.id)
        )
        return [
            LabelRecord(
                id=r.id,
                version_id=version_id,
                unit=r.unit,
                start=r.start,
                end=r.end,
                label=r.label,
                note=r.note,
                created=r.created,
                data_key=r.data_key,
            )
            for r in query
        ]

    def list_feedback_for(self, plugin: str, target: str) -> list[LabelRecord]:
        """Labels of every version of (``plugin``, ``target``), oldest first, each with its
        ``version_id`` (labels outlive the version they were made with for re-training)."""
        t = self.tables
        ids = [
            row.id
            for row in t.ModelVersion.select(t.ModelVersion.id).where(
                (t.ModelVersion.plugin == plugin) & (t.ModelVersion.target == target)
            )
        ]
        return [entry for version_id in ids for entry in self.list_feedback(version_id)]

    def delete_feedback(self, feedback_id: int) -> None:
        t = self.tables

        def work() -> None:
            if not t.FeedbackLabel.delete().where(t.FeedbackLabel.id == feedback_id).execute():
                raise NotFoundError(f"Feedback label {feedback_id} does not exist in the registry.")

        self._write(work)

    # -- overview and consistency ---------------------------------------------------------------
    def status(self) -> list[StatusRow]:
        """Per (plugin, target): latest version, production version, last trained, validated, age."""
        from turbofan_desktop.registry.overview import training_status

        return training_status(self.tables.ModelVersion)

    def check(self, *, repair: bool = False) -> CheckReport:
        """Find (and with ``repair`` fix what is safe) inconsistencies; see :mod:`.check`."""
        from turbofan_desktop.registry.check import check_registry

        return check_registry(self, repair=repair)


def _run_record(row: Any) -> RunRecord:
    return RunRecord(
        id=row.id,
        plugin=row.plugin,
        target=row.target,
        config=row.config,
        dataset_id=row.dataset_id,
        status=row.status,
        message=row.message,
        epochs_done=row.epochs_done,
        started=row.started,
        finished=row.finished,
        pid=row.pid,
        host=row.host,
        os_user=row.os_user,
    )
