"""`flask ops backup` / `flask ops restore`: a populated database and its file stores backed
up, restored into a fresh database and fresh folders, and checked there as an operator would:
the audit chain verifies against its checkpoints, the stored PDFs' signatures validate, the
verification codes and shown licences still answer (revoked ones as revoked), the row counts
match. On PostgreSQL through the real pg_dump and pg_restore, in databases of the test's own."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app import create_app
from app.applications import service as applications
from app.applications.service import Services
from app.audit import service as audit_service
from app.audit.chain import AuditChain
from app.audit.service import Actor
from app.db import get_session, utcnow
from app.identity.models import User
from app.identity.realname import verify_real_name
from app.identity.verifiers import IdentityCheck
from app.integrations.shared_data import get_connectors
from app.licences import service as licences
from app.licences.models import Licence
from app.migrations_cli import upgrade_database
from app.ops.backup import MANIFEST, STORES_TAR, database_facts, libpq_arguments
from app.organisation.models import Department
from app.queueing.codes import sign_compact
from app.queueing.settings import from_config as queue_settings
from app.seals import get_seal_context
from app.seals.issuing import Holder, issue_document
from app.seals.lifecycle import SealActor
from app.seals.models import IssuedDocument, Seal
from app.seals.registry import document_pdf, revoke_document
from app.seals.verification import verify_upload
from app.security import get_cipher
from tests.factories.identity import id_number_for
from tests.factories.seals import WEATHER_DATA, handwriting_png


class _PassingRealName:
    """The real-name service's yes, for set-up (its own tests use the emulator)."""

    method = "realname_service"

    def verify(self, name: str, id_number: str) -> IdentityCheck:
        return IdentityCheck(passed=True, method=self.method)


@dataclass
class Issued:
    """What the source issued, as the outside world holds it: codes and shown licences."""

    codes: dict[str, str]  # document code -> the status it must verify as
    licence_tokens: dict[str, str]  # shown licence token -> the status it must verify as


@pytest.fixture
def databases(database_url: str, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """`databases(name)`: a new empty database of this test's own (PostgreSQL beside the
    suite's, dropped afterwards; or an SQLite file)."""
    made: list[str] = []
    parts = urlsplit(database_url)
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))

    def run(statement: str) -> None:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(statement)

    def make(name: str) -> str:
        if not database_url.startswith("postgresql"):
            return f"sqlite:///{tmp_path / f'{name}.db'}"
        # The process id keeps two runs on one server out of each other's way.
        database = f"{parts.path.lstrip('/')}_backup_{name}_{os.getpid()}"
        run(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        run(f'CREATE DATABASE "{database}"')
        made.append(database)
        return urlunsplit(parts._replace(path=f"/{database}"))

    yield make
    for database in made:
        run(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _app(url: str, files: Path) -> Flask:
    """An app on `url` with its stores under `files`; the keys are the environment's, the same
    for the source and the restored copy, as they are in a real restore."""
    return create_app(
        "testing",
        DATABASE_URL=url,
        SEAL_PKI_DIR=str(files / "seals" / "pki"),
        SEAL_STORAGE_DIR=str(files / "seals" / "documents"),
        # The default layout: the checkpoints nested in the documents folder.
        AUDIT_CHECKPOINT_DIR=str(files / "seals" / "documents" / "audit-checkpoints"),
        MATERIALS_STORAGE_DIR=str(files / "materials"),
        IDENTITY_SERVICE_BASE="checksum",
        CITY_CODE_SERVICE_BASE="disabled",
        WECHAT_API_BASE="http://127.0.0.1:9",  # the seed's login hint is skipped, not fatal
        REDIS_URL="",
        RATELIMIT_ENABLED=False,
        JOB_RUNNER="manual",
        SECRET_KEY="backup-test-secret-" + "0123456789abcdef" * 3,
    )


def _invoke(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, (args, result.output, result.exception)
    return str(result.output)


def _citizen(session: Any, now: dt.datetime, serial: int) -> User:
    user = User(openid=f"o_backup_{serial}")
    session.add(user)
    session.flush()
    verify_real_name(
        session,
        get_cipher(),
        _PassingRealName(),
        user,
        name="王五",
        id_number=id_number_for(order=900 + serial),
        now=now,
    )
    user.face_verified_at = now
    session.flush()
    return user


def _instant_approval(session: Any, user: User, now: dt.datetime) -> Licence:
    """A 气象证明 filed, signed and approved in one step, as the mini-program does."""
    form = {
        "date": (now.date() - dt.timedelta(days=3)).isoformat(),
        "address": "番禺区南村镇兴业路",
        "longitude": 113.39,
        "latitude": 23.0,
        "purpose": "保险理赔",
    }
    application, _ = applications.file(
        session,
        Services(get_seal_context(), get_connectors(session), get_cipher()),
        user=user,
        matter_code="PY-QXJ-QXZM",
        form=form,
        enterprise_id=None,
        submit_now=True,
        handwriting_png=handwriting_png(),
        now=now,
    )
    assert application.status == "approved", application.decision
    licence = session.scalar(select(Licence).where(Licence.application_id == application.id))
    assert licence is not None
    return licence


def _populate(app: Flask, monkeypatch: pytest.MonkeyPatch, files: Path) -> Issued:
    """`make run`'s set-up, instant approvals with sealed licences, documents under a
    department's seal, one of each revoked; the audit chain sealed and checkpointed."""
    upgrade_database(app)
    monkeypatch.setattr("app.demo.PROJECT_ROOT", files)  # printable hall codes stay here
    _invoke(app, "organisation", "load")
    _invoke(app, "matters", "load")
    _invoke(app, "demo", "seed", "--registry-size", "20")
    codes: dict[str, str] = {}
    tokens: dict[str, str] = {}
    with app.app_context():
        session, ctx, now = get_session(), get_seal_context(), utcnow()
        settings = queue_settings(app.config)
        licensed = [_instant_approval(session, _citizen(session, now, i), now) for i in range(2)]
        weather = session.scalar(
            select(Seal).join(Department).where(Department.code == "PY-QXJ").order_by(Seal.id)
        )
        assert weather is not None
        documents = [
            issue_document(
                session,
                ctx,
                seal=weather,
                template="meteorological_certificate",
                holder=Holder(name=f"广州市番禺区备份{i}有限公司", id_number="91440113MA5XXXXX0G"),
                data=WEATHER_DATA,
                actor=SealActor("system"),
                now=now,
                matter="meteorological_certificate",
            )
            for i in range(2)
        ]
        revoke_document(session, documents[1], actor=Actor.system(), now=now, reason="备份测试撤销")
        licences.revoke(session, licensed[1], reason="备份测试注销", actor=Actor.system(), now=now)
        session.commit()
        for document in session.scalars(select(IssuedDocument)):
            codes[ctx.codes.code_for(document.public_id)] = (
                "revoked" if document.id in {documents[1].id, licensed[1].document_id} else "valid"
            )
        for licence, status in zip(licensed, ("valid", "revoked"), strict=True):
            # A counter scans the code the holder showed; the revoked one was shown before.
            expires = int(now.timestamp()) + licences.SHOW_SECONDS
            tokens[sign_compact(settings, licences.TOKEN_KIND, licence.id, expires)] = status
    assert "sealed" in _invoke(app, "audit", "seal")
    checkpoints = Path(app.config["AUDIT_CHECKPOINT_DIR"])
    assert list(checkpoints.glob("*/*.json")), "the sealing run wrote no checkpoint"
    return Issued(codes, tokens)


def _assert_restored_copy_checks_out(app: Flask, issued: Issued) -> None:
    """What README's runbook has an operator check after a restore."""
    printed = _invoke(app, "audit", "verify")
    assert "audit chain intact" in printed and " 0 checkpoints" not in printed
    with app.app_context():
        session, ctx, now = get_session(), get_seal_context(), utcnow()
        report = audit_service.verify(session, AuditChain.from_config(app.config))
        assert report.ok and report.entries > 0 and report.checkpoints > 0, report
        documents = session.scalars(select(IssuedDocument)).all()
        assert len(documents) == len(issued.codes) >= 6  # forms, licences, certificates
        for document in documents:
            verdict = verify_upload(session, ctx, document_pdf(ctx, document), now=now)
            assert verdict["signatures_status"] == "valid", verdict
            assert verdict["registry"]["found"], verdict
    client = app.test_client()
    for code, status in issued.codes.items():
        answer = client.get(f"/api/v1/seals/verify/{code}")
        assert answer.status_code == 200, answer.json
        assert answer.json["status"] == status
        assert client.get(f"/api/v1/seals/verify/{code}/pdf").status_code == 200
        assert client.get(f"/s/{code}").status_code == 200
    for token, status in issued.licence_tokens.items():
        answer = client.get(f"/api/v1/licences/verify/{token}")
        assert answer.status_code == 200, answer.json
        assert answer.json["status"] == status


def test_a_backup_restores_into_a_fresh_database_and_folders_that_verify(
    databases: Callable[[str], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _app(databases("source"), tmp_path / "source-files")
    issued = _populate(source, monkeypatch, tmp_path / "source-files")
    backup = tmp_path / "backups" / "nightly"

    printed = _invoke(source, "ops", "backup", "--to", str(backup))
    assert f"backup written to {backup}" in printed
    manifest = json.loads((backup / MANIFEST).read_text())
    source_facts = database_facts(source.extensions["db"].engine)
    assert manifest["row_counts"] == source_facts["row_counts"]
    assert manifest["alembic_revision"] == source_facts["alembic_revision"]
    assert manifest["row_counts"]["licences"] == 2
    assert all(manifest["stores"][name] > 0 for name in ("documents", "audit-checkpoints", "pki"))
    assert backup.stat().st_mode & 0o777 == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in backup.iterdir())
    assert not [p for p in backup.parent.iterdir() if p.name.startswith(".")]  # no leftovers
    source.extensions["db"].engine.dispose()

    target = _app(databases("target"), tmp_path / "restored-files")
    printed = _invoke(target, "ops", "restore", "--from", str(backup))
    assert "row counts match" in printed
    assert database_facts(target.extensions["db"].engine)["row_counts"] == manifest["row_counts"]
    _assert_restored_copy_checks_out(target, issued)

    # A restore never lands on data by accident: the same again is refused, untouched.
    again = target.test_cli_runner().invoke(args=["ops", "restore", "--from", str(backup)])
    assert again.exit_code != 0 and "not empty" in again.output
    # And a second backup never overwrites the first.
    twice = source.test_cli_runner().invoke(args=["ops", "backup", "--to", str(backup)])
    assert twice.exit_code != 0 and "exists" in twice.output
    target.extensions["db"].engine.dispose()


def test_a_tampered_archive_is_refused_before_anything_is_written(
    databases: Callable[[str], str], tmp_path: Path
) -> None:
    source = _app(databases("small"), tmp_path / "source-files")
    upgrade_database(source)
    _invoke(source, "organisation", "load")
    documents = Path(source.config["SEAL_STORAGE_DIR"])
    documents.mkdir(parents=True)
    (documents / "a.pdf").write_bytes(b"%PDF-1.7 stand-in")
    backup = tmp_path / "backup"
    _invoke(source, "ops", "backup", "--to", str(backup))
    source.extensions["db"].engine.dispose()

    archive = backup / STORES_TAR
    data = bytearray(archive.read_bytes())
    data[len(data) // 3] ^= 0x01  # one bit, somewhere in the stores
    archive.write_bytes(bytes(data))

    target_files = tmp_path / "restored-files"
    target = _app(databases("tampered"), target_files)
    refused = target.test_cli_runner().invoke(args=["ops", "restore", "--from", str(backup)])
    assert refused.exit_code != 0
    assert f"{archive} does not match its checksum" in refused.output
    assert not target_files.exists()
    assert database_facts(target.extensions["db"].engine)["row_counts"] == {}
    target.extensions["db"].engine.dispose()


def test_checkpoints_newer_than_the_copied_chain_stay_out_and_force_replaces_a_copy(
    databases: Callable[[str], str], tmp_path: Path
) -> None:
    source = _app(databases("chain"), tmp_path / "source-files")
    upgrade_database(source)
    with source.app_context():
        for action in ("ops.test.first", "ops.test.second"):
            audit_service.record(get_session(), action, actor=Actor.system(), now=utcnow())
        get_session().commit()
    _invoke(source, "audit", "seal")
    checkpoints = Path(source.config["AUDIT_CHECKPOINT_DIR"])
    written = sorted(p.relative_to(checkpoints).as_posix() for p in checkpoints.glob("*/*.json"))
    assert written
    # As if the sealing job checkpointed entries committed after the database was copied.
    later = checkpoints / "2099-01-01" / "999999999999.json"
    later.parent.mkdir()
    later.write_text("{}")
    backup = tmp_path / "backup"
    _invoke(source, "ops", "backup", "--to", str(backup))
    source.extensions["db"].engine.dispose()

    with tarfile.open(backup / STORES_TAR) as archive:
        names = archive.getnames()
    assert sorted(n.removeprefix("audit-checkpoints/") for n in names if "checkpoints" in n) == (
        written
    )  # the later one is not there, and the nested folder is not in documents/ too

    target = _app(databases("chain_target"), tmp_path / "restored-files")
    _invoke(target, "ops", "restore", "--from", str(backup))
    assert "audit chain intact" in _invoke(target, "audit", "verify")
    stray = Path(target.config["SEAL_STORAGE_DIR"]) / "stray.pdf"
    stray.write_bytes(b"not from the backup")
    _invoke(target, "ops", "restore", "--from", str(backup), "--force")
    assert not stray.exists()  # the store is the backup's again, not a merge
    assert "audit chain intact" in _invoke(target, "audit", "verify")
    target.extensions["db"].engine.dispose()


def test_the_password_reaches_pg_tools_through_the_environment_only() -> None:
    url = make_url(
        "postgresql+psycopg://yhb:s3cr%27et%20pw@db.internal:6432/yuhaoban?sslmode=verify-full"
    )
    conninfo, env = libpq_arguments(url)
    assert "s3cr" not in conninfo and "password" not in conninfo
    assert env["PGPASSWORD"] == "s3cr'et pw"
    assert conninfo == (
        "host='db.internal' port='6432' user='yhb' dbname='yuhaoban' sslmode='verify-full'"
    )
    assert "PGPASSWORD" not in libpq_arguments(make_url("postgresql://yhb@h/d"))[1]
