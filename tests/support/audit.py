"""Helpers of the audit tests."""

from __future__ import annotations

import base64
import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.models import AuditEntry

# When the audit tests' entries happen (each a second after the one before).
NOW = dt.datetime(2026, 11, 27, 8, 30, tzinfo=dt.UTC)


def key_spec(*key_ids: str) -> str:
    """A key list setting whose key for each id is fixed bytes derived from the id."""
    return ",".join(
        f"{kid}:{base64.b64encode(kid.encode().ljust(32, b'.')).decode()}" for kid in key_ids
    )


def record_logins(
    session: Session, count: int, *, start: int = 1, at: dt.datetime = NOW
) -> list[AuditEntry]:
    """Record `count` staff logins (staff `start`, `start` + 1, ...), a second apart from `at`,
    and return their entries, oldest first.

    Recording returns nothing; the entries are read back, expired, so that reading them later
    (the tests' sessions keep objects across commits) sees what sealing gave them."""
    for n in range(start, start + count):
        audit.record(
            session,
            "staff.login",
            actor=audit.Actor("staff", n),
            now=at + dt.timedelta(seconds=n),
            subject_type="staff",
            subject_id=n,
            details={"outcome": "ok", "n": n},
            request_id=f"req-{n}",
        )
    newest = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(count))
    entries = list(newest)[::-1]
    for entry in entries:
        session.expire(entry)
    return entries
