"""Issuing with an Idempotency-Key: a retried request issues one document, never two."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEntry
from app.audit.service import Actor
from app.db import make_engine, utcnow
from app.identity.models import StaffRole
from app.organisation.models import Department
from app.seals.context import SealContext
from app.seals.issuing import Holder, issue_document
from app.seals.lifecycle import SealActor, create_seal
from app.seals.models import IssuedDocument, Seal, SealCertificate, SealKey, SealKind, SealUse
from tests.factories.seals import WEATHER_DATA

ISSUE = {
    "template": "meteorological_certificate",
    "matter": "meteorological_certificate",
    "holder": {"name": "广州市番禺区某某建筑有限公司", "id_number": "91440113MA5XXXXX0G"},
    "data": {"purpose": "保险理赔", "place": "市桥街道", "period": "2026年2月14日"},
}


def _documents(session: Session, seal: Seal) -> int:
    return session.scalar(
        select(func.count(IssuedDocument.id)).where(IssuedDocument.seal_id == seal.id)
    )


def test_a_retried_issue_returns_the_first_document(
    client, session, create_seal_for, create_staff, staff_headers
) -> None:  # type: ignore[no-untyped-def]
    seal = create_seal_for()
    reviewer = create_staff(grants=[(StaffRole.REVIEWER, None, seal.department_id)])
    headers = {**staff_headers(reviewer), "Idempotency-Key": "issue-7f3a9c"}
    url = f"/api/v1/seals/{seal.id}/documents"
    first = client.post(url, json=ISSUE, headers=headers)
    retry = client.post(url, json=ISSUE, headers=headers)
    assert first.status_code == retry.status_code == 201, retry.get_json()
    assert retry.get_json() == first.get_json()
    assert _documents(session, seal) == 1
    uses = session.scalar(
        select(func.count(SealUse.id)).where(
            SealUse.seal_id == seal.id, SealUse.outcome == "signed"
        )
    )
    assert uses == 1  # the seal was applied once

    # Without a key, or with a new one, a second request is a second document.
    client.post(url, json=ISSUE, headers=staff_headers(reviewer))
    client.post(url, json=ISSUE, headers={**headers, "Idempotency-Key": "issue-other"})
    assert _documents(session, seal) == 3


def test_the_same_key_with_other_content_is_refused(
    client, session, create_seal_for, create_staff, staff_headers
) -> None:  # type: ignore[no-untyped-def]
    seal = create_seal_for()
    reviewer = create_staff(grants=[(StaffRole.REVIEWER, None, seal.department_id)])
    headers = {**staff_headers(reviewer), "Idempotency-Key": "k-1"}
    url = f"/api/v1/seals/{seal.id}/documents"
    assert client.post(url, json=ISSUE, headers=headers).status_code == 201
    other = {**ISSUE, "holder": {"name": "另一家公司", "id_number": "91440113MA5YYYYY0Q"}}
    refused = client.post(url, json=other, headers=headers)
    assert refused.status_code == 422 and refused.get_json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert "另一家公司" not in str(refused.get_json())
    assert _documents(session, seal) == 1


def test_keys_belong_to_the_issuing_staff_member(
    client, session, create_seal_for, create_staff, staff_headers
) -> None:  # type: ignore[no-untyped-def]
    seal = create_seal_for()
    first = create_staff(grants=[(StaffRole.REVIEWER, None, seal.department_id)])
    second = create_staff(grants=[(StaffRole.REVIEWER, None, seal.department_id)])
    url = f"/api/v1/seals/{seal.id}/documents"
    a = client.post(url, json=ISSUE, headers={**staff_headers(first), "Idempotency-Key": "same"})
    b = client.post(url, json=ISSUE, headers={**staff_headers(second), "Idempotency-Key": "same"})
    assert a.status_code == b.status_code == 201
    assert a.get_json()["document_id"] != b.get_json()["document_id"]


@pytest.mark.parametrize("key", ["", "has space", "x" * 65, "中文"])
def test_a_malformed_key_is_refused(
    client, create_seal_for, create_staff, staff_headers, key
) -> None:  # type: ignore[no-untyped-def]
    seal = create_seal_for()
    reviewer = create_staff(grants=[(StaffRole.REVIEWER, None, seal.department_id)])
    response = client.post(
        f"/api/v1/seals/{seal.id}/documents",
        json=ISSUE,
        headers={**staff_headers(reviewer), "Idempotency-Key": key.encode().decode("latin-1")},
    )
    assert response.status_code == 422 and response.get_json()["code"] == "VALIDATION_FAILED"


# ---------------------------------------------------------------- racing retries (PostgreSQL)

RACERS = 4


@pytest.fixture
def committed_seal(
    app: Flask, database_url: str, seal_context: SealContext
) -> Iterator[tuple[sessionmaker[Session], int]]:
    """A committed department and seal on a separate engine; removed again afterwards."""
    engine = make_engine(database_url)
    make_session = sessionmaker(bind=engine, expire_on_commit=False)
    suffix = uuid.uuid4().hex[:8]
    with make_session() as setup:
        department = Department(code=f"RACE{suffix}", name=f"竞态测试局{suffix}")
        setup.add(department)
        setup.flush()
        seal = create_seal(
            setup,
            seal_context,
            department=department,
            kind=SealKind.APPROVAL,
            valid_until=utcnow().replace(year=utcnow().year + 1),
            authorised_roles=["reviewer"],
            authorised_templates=["meteorological_certificate"],
            authorised_matters=["meteorological_certificate"],
            actor=Actor.system(),
            now=utcnow(),
        )
        setup.commit()
        seal_id, department_id, key_id, cert_id = (
            seal.id,
            department.id,
            seal.key_id,
            seal.certificate_id,
        )
    try:
        yield make_session, seal_id
    finally:
        with make_session() as cleanup:
            cleanup.execute(delete(SealUse).where(SealUse.seal_id == seal_id))
            cleanup.execute(delete(IssuedDocument).where(IssuedDocument.seal_id == seal_id))
            cleanup.execute(delete(Seal).where(Seal.id == seal_id))
            cleanup.execute(delete(SealCertificate).where(SealCertificate.id == cert_id))
            cleanup.execute(delete(SealKey).where(SealKey.id == key_id))
            cleanup.execute(delete(Department).where(Department.id == department_id))
            # Nothing seals in tests (manual job runner): this test's entries are the unsealed ones.
            cleanup.execute(delete(AuditEntry).where(AuditEntry.seq.is_(None)))
            cleanup.commit()
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgresql"),
    reason="needs PostgreSQL: real parallel connections",
)
def test_racing_retries_with_one_key_issue_one_document(
    app: Flask, seal_context: SealContext, committed_seal: tuple[sessionmaker[Session], int]
) -> None:
    make_session, seal_id = committed_seal
    cipher = app.extensions["cipher"]
    start = threading.Barrier(RACERS)

    def racer(_: int) -> str:
        with make_session() as session:
            seal = session.get(Seal, seal_id)
            kwargs: dict[str, Any] = {
                "template": "meteorological_certificate",
                "holder": Holder(
                    name="广州市番禺区某某建筑有限公司", id_number="91440113MA5XXXXX0G"
                ),
                "data": WEATHER_DATA,
                "actor": SealActor("system"),
                "now": utcnow(),
                "matter": "meteorological_certificate",
                "cipher": cipher,
                "idempotency_key": "approval-run-42",
            }
            start.wait()
            document = issue_document(session, seal_context, seal=seal, **kwargs)
            public_id = document.public_id
            session.commit()
            return public_id

    with ThreadPoolExecutor(RACERS) as pool:
        outcomes = list(pool.map(racer, range(RACERS)))

    assert len(set(outcomes)) == 1, outcomes
    with make_session() as check:
        documents = check.scalars(
            select(IssuedDocument).where(IssuedDocument.seal_id == seal_id)
        ).all()
        assert [d.public_id for d in documents] == outcomes[:1]
        uses = check.scalar(
            select(func.count(SealUse.id)).where(
                SealUse.seal_id == seal_id, SealUse.outcome == "signed"
            )
        )
        assert uses == 1
    stored = {p.name for p in seal_context.storage_dir.glob("*.pdf")}
    assert f"{outcomes[0]}.pdf" in stored
