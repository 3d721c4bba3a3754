"""Backups of the database and the file stores, and restoring one (`flask ops backup/restore`).

A backup is one folder, written whole or not at all:

    manifest.json     when, the Alembic revision, the database kind, the SHA-256 of each part,
                      the files of each store and the row count of every table
    database.dump     pg_dump's custom format (PostgreSQL), or
    database.sqlite3  a copy made with SQLite's online backup API
    stores.tar        the file stores: signed documents, materials, audit checkpoints, seal PKI

The database and the stores must come from the same backup and be restored together. An issued
document is a row that names its signed PDF by SHA-256 and storage key: a row without its file,
or a file from another moment, fails verification. The audit chain lives in the database and its
signed checkpoints in a folder, and `flask audit verify` holds one against the other: a
checkpoint ahead of the chain reads as a truncation, a chain without its checkpoints cannot show
one. The PKI folder holds the CA keys and certificates that the database's seals chain up to.

So the database is copied first, from one snapshot that also gives the manifest its figures,
and the stores after it: a document's file is written before its row commits, so every row in
the copy finds its file; checkpoints are taken only up to the chain head of that snapshot, so
none is ahead of the copied chain.

The copy holds personal data (encrypted) and the PKI's keys (wrapped under SEAL_MASTER_KEY):
every file is mode 0600 in a 0700 folder. The keys that unwrap them come from the environment
and are backed up separately (README, "Backups and restore").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess  # nosec B404  # runs pg_dump and pg_restore, argument lists, no shell
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, func, inspect, select, text
from sqlalchemy.engine import URL

from app.audit.models import AuditChainHead
from app.db import Base
from app.models import import_all_models

FORMAT = 1
MANIFEST = "manifest.json"
STORES_TAR = "stores.tar"
DATABASE_PART = {"postgresql": "database.dump", "sqlite": "database.sqlite3"}

# (name in the archive, setting): the file stores that go with the database.
STORE_SETTINGS = (
    ("documents", "SEAL_STORAGE_DIR"),
    ("materials", "MATERIALS_STORAGE_DIR"),
    ("audit-checkpoints", "AUDIT_CHECKPOINT_DIR"),
    ("pki", "SEAL_PKI_DIR"),
)
CHECKPOINTS = "audit-checkpoints"
_CHECKPOINT_FILE = re.compile(r"(\d{12})\.json")
_TOOL_VERSION = re.compile(r"\)\s+(\d+)")


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says why and holds no secret."""


@dataclass(frozen=True)
class Stores:
    """Where each file store lives on this machine, by its name in the archive."""

    paths: dict[str, Path]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Stores:
        return cls({name: Path(config[setting]).resolve() for name, setting in STORE_SETTINGS})

    def files(self, name: str) -> Iterator[Path]:
        """The store's regular files, without the other stores nested in it (the checkpoints
        sit inside the documents folder by default)."""
        root = self.paths[name]
        others = {path for other, path in self.paths.items() if other != name}
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if Path(folder, d) not in others)
            for file in sorted(files):
                path = Path(folder, file)
                if path.is_file() and not path.is_symlink():
                    yield path


@dataclass(frozen=True)
class Restored:
    """What a restore put back, and the revision the database is at."""

    manifest: dict[str, Any]
    revision: str | None


# -- facts read from the database --------------------------------------------------------------


def _kind(engine: Engine) -> str:
    kind = engine.dialect.name
    if kind not in DATABASE_PART:
        raise BackupError(f"no backup for a {kind} database (PostgreSQL or SQLite only)")
    return kind


def _facts(connection: Connection) -> dict[str, Any]:
    """Revision, audit chain head and row counts, as this connection's snapshot sees them."""
    import_all_models()
    present = set(inspect(connection).get_table_names())
    revision = None
    if "alembic_version" in present:
        revision = connection.scalar(text("SELECT version_num FROM alembic_version"))
    head = 0
    if AuditChainHead.__tablename__ in present:
        head = connection.scalar(select(func.max(AuditChainHead.last_seq))) or 0
    counts = {
        name: int(connection.scalar(select(func.count()).select_from(table)) or 0)
        for name, table in sorted(Base.metadata.tables.items())
        if name in present
    }
    return {"alembic_revision": revision, "audit_head_seq": int(head), "row_counts": counts}


def database_facts(engine: Engine) -> dict[str, Any]:
    """The revision, audit head and row counts of `engine`'s database now."""
    with engine.connect() as connection:
        return _facts(connection)


def _has_tables(engine: Engine) -> bool:
    return bool(inspect(engine).get_table_names())


# -- PostgreSQL's own tools --------------------------------------------------------------------


def _conninfo_value(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def libpq_arguments(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection string for `url` without its password, and the environment for the
    child process: the password goes in PGPASSWORD there, never on a command line."""
    params: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "dbname": url.database,
    }
    for key, value in url.query.items():  # sslmode, sslrootcert, ...
        if key != "password":
            params[key] = value if isinstance(value, str) else value[-1]
    conninfo = " ".join(
        f"{key}={_conninfo_value(str(value))}"
        for key, value in params.items()
        if value not in (None, "")
    )
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return conninfo, env


def pg_tool(engine: Engine, name: str) -> str:
    """pg_dump or pg_restore of at least the server's major version: Debian's versioned
    folder for it first, then PATH."""
    with engine.connect() as connection:
        server = int(connection.scalar(text("SHOW server_version_num")) or 0) // 10000
    candidates = [Path(f"/usr/lib/postgresql/{server}/bin/{name}")]
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if not os.access(candidate, os.X_OK):
            continue
        shown = subprocess.run(  # noqa: S603  # nosec B603  # a fixed tool path, no shell
            [str(candidate), "--version"], capture_output=True, text=True, check=False
        ).stdout
        found = _TOOL_VERSION.search(shown)
        if found and int(found.group(1)) >= server:
            return str(candidate)
    raise BackupError(
        f"no {name} of PostgreSQL {server} or newer (install postgresql-client-{server})"
    )


def _run(command: list[str], env: dict[str, str]) -> None:
    # An argument list, no shell; the password is in the child's environment, not in them.
    done = subprocess.run(  # noqa: S603  # nosec B603  # argument list, no shell
        command, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        # The tools' own words (the last few lines): no password is in their arguments.
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise BackupError(f"{Path(command[0]).name} failed ({done.returncode}): {tail}")


# -- backing up --------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dump_postgresql(engine: Engine, out: Path) -> dict[str, Any]:
    """pg_dump of an exported snapshot, and the manifest's figures read in that snapshot."""
    conninfo, env = libpq_arguments(engine.url)
    tool = pg_tool(engine, "pg_dump")
    connection = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    with connection, connection.begin():
        snapshot = connection.scalar(text("SELECT pg_export_snapshot()"))
        facts = _facts(connection)
        # The transaction stays open until pg_dump is done: the snapshot lives as long.
        _run(
            [
                tool,
                "--format=custom",
                f"--snapshot={snapshot}",
                f"--file={out}",
                f"--dbname={conninfo}",
            ],
            env,
        )
    return facts


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError("only an SQLite database in a file can be backed up or restored")
    return Path(database)


def _copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy even while the source is written."""
    source_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        target_db = sqlite3.connect(target)
        try:
            source_db.backup(target_db)
        finally:
            target_db.close()
    finally:
        source_db.close()


def _dump_sqlite(engine: Engine, out: Path) -> dict[str, Any]:
    _copy_sqlite(_sqlite_path(engine), out)
    # The figures come from the copy itself, so they describe exactly what was saved.
    copy = create_engine(f"sqlite:///{out}")
    try:
        return database_facts(copy)
    finally:
        copy.dispose()


def _archive_stores(stores: Stores, out: Path, *, audit_head_seq: int) -> dict[str, int]:
    """Tar the stores under their names; return how many files each gave."""
    counted: dict[str, int] = {}
    with tarfile.open(out, "w") as archive:
        for name in stores.paths:
            root = stores.paths[name]
            counted[name] = 0
            for path in stores.files(name):
                if name == CHECKPOINTS:
                    matched = _CHECKPOINT_FILE.fullmatch(path.name)
                    # Only checkpoints of entries in the copied chain: a later one would read
                    # as a truncation of the restored chain.
                    if matched is None or int(matched.group(1)) > audit_head_seq:
                        continue
                archive.add(path, arcname=f"{name}/{path.relative_to(root).as_posix()}")
                counted[name] += 1
    return counted


def create_backup(
    engine: Engine, stores: Stores, target: Path, *, now: dt.datetime
) -> dict[str, Any]:
    """Write a backup of the database and the stores to the new folder `target`; return its
    manifest. The folder appears whole (written beside it, then renamed) or not at all."""
    kind = _kind(engine)
    if target.exists():
        raise BackupError(f"{target} exists: a backup never overwrites another")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        database_part = work / DATABASE_PART[kind]
        if kind == "postgresql":
            facts = _dump_postgresql(engine, database_part)
        else:
            facts = _dump_sqlite(engine, database_part)
        files = _archive_stores(stores, work / STORES_TAR, audit_head_seq=facts["audit_head_seq"])
        parts = [database_part, work / STORES_TAR]
        manifest = {
            "format": FORMAT,
            "created_at": now.isoformat(),
            "database": kind,
            **facts,
            "stores": files,
            "sha256": {part.name: _sha256(part) for part in parts},
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        for part in [*parts, work / MANIFEST]:
            part.chmod(0o600)
        os.rename(work, target)  # mkdtemp made it 0700
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


# -- restoring ---------------------------------------------------------------------------------


def read_manifest(source: Path) -> dict[str, Any]:
    """The backup's manifest, once every part it names matches its SHA-256."""
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"no readable {MANIFEST} in {source}: {exc}") from None
    if manifest.get("format") != FORMAT or manifest.get("database") not in DATABASE_PART:
        raise BackupError(f"{source} is not a backup this version can restore")
    expected = manifest.get("sha256") or {}
    needed = {DATABASE_PART[manifest["database"]], STORES_TAR}
    if set(expected) != needed:
        raise BackupError(f"the manifest of {source} does not name the parts of a backup")
    for name, digest in sorted(expected.items()):
        part = source / name
        if not part.is_file() or _sha256(part) != digest:
            raise BackupError(f"{part} does not match its checksum: the backup is damaged")
    return manifest


def _busy_stores(stores: Stores) -> list[str]:
    return [name for name in stores.paths if next(stores.files(name), None) is not None]


def _drop_schema(engine: Engine) -> None:
    """Everything the dump recreates: the tables (their triggers go with them) and the
    schema's functions (migration 0028's trigger function), which outlive their tables."""
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as connection:
        for name in inspect(connection).get_table_names():
            connection.execute(text(f"DROP TABLE IF EXISTS {quote(name)} CASCADE"))
        functions: list[str] = list(
            connection.execute(
                text(
                    "SELECT p.oid::regprocedure::text FROM pg_proc p"
                    " JOIN pg_namespace n ON n.oid = p.pronamespace"
                    " WHERE n.nspname = current_schema() AND p.prokind = 'f'"
                )
            ).scalars()
        )
        for signature in functions:
            # A regprocedure's text is the function's quoted name and argument types.
            connection.execute(text(f"DROP FUNCTION IF EXISTS {signature} CASCADE"))


def _restore_postgresql(engine: Engine, dump: Path, *, force: bool) -> None:
    if force:
        _drop_schema(engine)
    engine.dispose()
    conninfo, env = libpq_arguments(engine.url)
    _run(
        [
            pg_tool(engine, "pg_restore"),
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={conninfo}",
            str(dump),
        ],
        env,
    )


def _only(prefix: str) -> Any:
    """A tar extraction filter: the members under `prefix/`, renamed to below it, through
    the standard library's `data` filter (no absolute paths, no escapes, no devices)."""

    def keep(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        if not member.name.startswith(prefix + "/"):
            return None
        return tarfile.data_filter(member.replace(name=member.name[len(prefix) + 1 :]), path)

    return keep


def _unpack(archive_path: Path, stores: Stores) -> None:
    """Each store's content replaced by the archived one. Everything moves by rename inside
    the store's own folder (unpacked into a hidden folder there, the old content set aside
    there), so a store that is a mount point works; a store nested in another stays put while
    the outer one is replaced."""
    for name, root in stores.paths.items():
        root.mkdir(parents=True, exist_ok=True)
        others = {path for other, path in stores.paths.items() if other != name}
        staging = Path(tempfile.mkdtemp(prefix=".restoring-", dir=root))
        replaced = Path(tempfile.mkdtemp(prefix=".replaced-", dir=root))
        with tarfile.open(archive_path) as archive:
            # Safe: every member passes tarfile.data_filter (in _only), no escapes or devices.
            archive.extractall(staging, filter=_only(name))  # noqa: S202  # nosec B202  # data_filter
        for entry in list(root.iterdir()):
            if entry not in (staging, replaced) and entry not in others:
                os.rename(entry, replaced / entry.name)
        for entry in list(staging.iterdir()):
            os.rename(entry, root / entry.name)
        shutil.rmtree(staging)
        shutil.rmtree(replaced)


def restore_backup(engine: Engine, stores: Stores, source: Path, *, force: bool) -> Restored:
    """Restore the backup in `source` into `engine`'s database and the stores' folders.

    Everything is checked before anything is written: the parts' checksums, the database kind,
    and (without `force`) that the database has no table and the stores no file. Afterwards the
    restored revision and row counts must be the manifest's.
    """
    manifest = read_manifest(source)
    kind = _kind(engine)
    if manifest["database"] != kind:
        raise BackupError(f"this backup is of a {manifest['database']} database, not {kind}")
    if not force:
        if _has_tables(engine):
            raise BackupError("the target database is not empty (use --force to replace it)")
        busy = _busy_stores(stores)
        if busy:
            raise BackupError(f"stores not empty: {', '.join(busy)} (use --force to replace)")
    part = source / DATABASE_PART[kind]
    if kind == "postgresql":
        _restore_postgresql(engine, part, force=force)
    else:
        engine.dispose()
        _copy_sqlite(part, _sqlite_path(engine))
    _unpack(source / STORES_TAR, stores)

    facts = database_facts(engine)
    if facts["alembic_revision"] != manifest["alembic_revision"]:
        raise BackupError(
            f"restored database at revision {facts['alembic_revision']!r}, "
            f"the backup says {manifest['alembic_revision']!r}"
        )
    if facts["row_counts"] != manifest["row_counts"]:
        differ = sorted(
            name
            for name in set(facts["row_counts"]) | set(manifest["row_counts"])
            if facts["row_counts"].get(name) != manifest["row_counts"].get(name)
        )
        raise BackupError(f"restored row counts differ from the backup's: {', '.join(differ)}")
    return Restored(manifest, facts["alembic_revision"])
