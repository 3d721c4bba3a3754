"""50 citizens booking one slot at once on real PostgreSQL connections never overbook it."""

from __future__ import annotations

import datetime as dt
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.appointments import service
from app.appointments.models import Appointment, AppointmentSlot
from app.audit.models import AuditEntry
from app.db import make_engine
from app.errors import DomainError
from app.halls.models import OpeningHours, ServiceCategory
from app.identity.models import User
from app.organisation.models import Hall, HallKind
from tests.factories.appointments import RULES, local

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgresql"),
        reason="needs PostgreSQL: real parallel connections and row locks",
    ),
]

RACERS = 50
CAPACITY = 7
NOW = local(2026, 9, 30, 10, 0)


@pytest.fixture
def committed_slot(database_url: str) -> Iterator[tuple[sessionmaker[Session], int, list[int]]]:
    """A committed hall, category, slot and 50 users on a separate engine; removed afterwards."""
    engine = make_engine(database_url)
    make_session = sessionmaker(bind=engine, expire_on_commit=False)
    tag = uuid.uuid4().hex[:10]
    with make_session() as setup:
        hall = Hall(code=f"RACE{tag}", name=f"并发测试中心{tag}", kind=HallKind.TOWN)
        setup.add(hall)
        setup.flush()
        setup.add_all(
            OpeningHours(hall_id=hall.id, weekday=d, opens_at=dt.time(9), closes_at=dt.time(17))
            for d in range(5)
        )
        category = ServiceCategory(hall_id=hall.id, name="综合业务", prefix="A")
        setup.add(category)
        setup.flush()
        slot = AppointmentSlot(
            hall_id=hall.id,
            category_id=category.id,
            day=dt.date(2026, 10, 8),
            starts_at=local(2026, 10, 8, 9),
            ends_at=local(2026, 10, 8, 9, 30),
            capacity=CAPACITY,
            booked=0,
        )
        users = [User(openid=f"o_race_{tag}_{i}") for i in range(RACERS)]
        setup.add_all([slot, *users])
        setup.commit()
        ids = (hall.id, category.id, slot.id, [u.id for u in users])
    hall_id, category_id, slot_id, user_ids = ids
    try:
        yield make_session, slot_id, user_ids
    finally:
        with make_session() as cleanup:
            cleanup.execute(delete(Appointment).where(Appointment.slot_id == slot_id))
            cleanup.execute(delete(AppointmentSlot).where(AppointmentSlot.id == slot_id))
            cleanup.execute(delete(User).where(User.id.in_(user_ids)))
            cleanup.execute(delete(ServiceCategory).where(ServiceCategory.id == category_id))
            cleanup.execute(delete(OpeningHours).where(OpeningHours.hall_id == hall_id))
            cleanup.execute(delete(Hall).where(Hall.id == hall_id))
            # Nothing seals in tests (manual job runner): this test's entries are the unsealed ones.
            cleanup.execute(delete(AuditEntry).where(AuditEntry.seq.is_(None)))
            cleanup.commit()
        engine.dispose()


def test_a_full_slot_never_overbooks_under_fifty_concurrent_bookings(
    app: Flask,
    committed_slot: tuple[sessionmaker[Session], int, list[int]],
) -> None:
    make_session, slot_id, user_ids = committed_slot
    start = threading.Barrier(RACERS)

    def racer(user_id: int) -> str:
        # As a request does: the app's context (its template catalog for the confirmation).
        with app.app_context(), make_session() as session:
            start.wait()
            try:
                service.book(
                    session,
                    user_id=user_id,
                    slot_id=slot_id,
                    idempotency_key=None,
                    rules=RULES,
                    now=NOW,
                )
            except DomainError as exc:
                session.rollback()
                return exc.code
            session.commit()
            return "ok"

    with ThreadPoolExecutor(RACERS) as pool:
        outcomes = list(pool.map(racer, user_ids))

    assert outcomes.count("ok") == CAPACITY, outcomes
    assert set(outcomes) == {"ok", "SLOT_FULL"}
    with make_session() as check:
        slot = check.get_one(AppointmentSlot, slot_id)
        booked = check.scalar(
            select(func.count()).select_from(Appointment).where(Appointment.slot_id == slot_id)
        )
        assert slot.booked == booked == CAPACITY
