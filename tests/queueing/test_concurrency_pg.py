"""Takes and calls racing on real PostgreSQL connections: no duplicate, no gap, no double call."""

from __future__ import annotations

import datetime as dt
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import case, create_engine, delete, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEntry
from app.audit.service import Actor
from app.calendar import local_day
from app.db import utcnow
from app.halls.models import HallProfile, OpeningHours, ServiceCategory, Window, WindowCategory
from app.identity.models import LoginFamily, RefreshToken, User
from app.identity.principals import principal_for
from app.identity.sessions import start_session
from app.notify.models import NotificationOutbox
from app.organisation.models import Hall, HallKind
from app.queueing import codes, windows
from app.queueing.demo import HALL_LAT, HALL_LNG, setup_queue_hall
from app.queueing.errors import AlreadyHoldingTicket, QueueEmpty
from app.queueing.models import (
    QUEUED_STATUSES,
    HallCode,
    QueueCount,
    Ticket,
    TicketCounter,
    TicketSource,
    TicketStatus,
    TicketTransition,
)
from app.queueing.settings import QueueSettings, from_config
from app.queueing.taking import Issued, issue_ticket
from blueprints.queueing import citizen as citizen_routes
from tests.factories.identity import app_token_settings
from tests.factories.queueing import window_action

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgresql"),
        reason="needs PostgreSQL: real parallel connections, row locks and SKIP LOCKED",
    ),
]

TAKERS = 200
CONNECTIONS = 40  # the server allows 100 connections in all; other tests share it


@dataclass
class Committed:
    make_session: sessionmaker[Session]
    hall_id: int
    category_ids: dict[str, int]
    window_ids: list[int]
    user_ids: list[int]
    settings: QueueSettings


@pytest.fixture
def committed_hall(app: Flask, database_url: str) -> Iterator[Committed]:
    """A committed hall (4 windows serving A), 200 citizens, their own engine; removed after."""
    engine = create_engine(database_url, pool_size=CONNECTIONS, max_overflow=0, pool_timeout=120)
    make_session = sessionmaker(bind=engine, expire_on_commit=False)
    tag = uuid.uuid4().hex[:8]
    with make_session() as setup:
        hall = Hall(code=f"RACE{tag}", name=f"并发测试大厅{tag}", kind=HallKind.TOWN)
        setup.add(hall)
        setup.flush()
        qh = setup_queue_hall(
            setup, hall, categories=[("综合业务", "A")], windows=[(n, "A") for n in (1, 2, 3, 4)]
        )
        users = [User(openid=f"o_race_{tag}_{i}") for i in range(TAKERS)]
        setup.add_all(users)
        setup.commit()
        committed = Committed(
            make_session,
            hall.id,
            {p: c.id for p, c in qh.categories.items()},
            [w.id for w in qh.windows.values()],
            [u.id for u in users],
            from_config(app.config),
        )
    try:
        yield committed
    finally:
        with make_session() as cleanup:
            ticket_ids = select(Ticket.id).where(Ticket.hall_id == committed.hall_id)
            cleanup.execute(
                delete(TicketTransition).where(TicketTransition.ticket_id.in_(ticket_ids))
            )
            cleanup.execute(
                delete(NotificationOutbox).where(NotificationOutbox.user_id.in_(committed.user_ids))
            )
            cleanup.execute(delete(Ticket).where(Ticket.hall_id == committed.hall_id))
            category_ids = list(committed.category_ids.values())
            cleanup.execute(
                delete(TicketCounter).where(TicketCounter.category_id.in_(category_ids))
            )
            cleanup.execute(
                delete(WindowCategory).where(WindowCategory.category_id.in_(category_ids))
            )
            cleanup.execute(delete(Window).where(Window.hall_id == committed.hall_id))
            cleanup.execute(
                delete(ServiceCategory).where(ServiceCategory.hall_id == committed.hall_id)
            )
            cleanup.execute(delete(OpeningHours).where(OpeningHours.hall_id == committed.hall_id))
            cleanup.execute(delete(HallProfile).where(HallProfile.hall_id == committed.hall_id))
            cleanup.execute(delete(User).where(User.id.in_(committed.user_ids)))
            cleanup.execute(delete(Hall).where(Hall.id == committed.hall_id))
            cleanup.commit()
        engine.dispose()


def _take_all(committed: Committed, now: dt.datetime) -> list[tuple[str, int, int | None]]:
    """Everyone takes a number at once: (display, number, people ahead at issue) each."""
    return _take_all_of(committed, now, 0, TAKERS)


def _take_all_of(
    committed: Committed, now: dt.datetime, first: int, end: int
) -> list[tuple[str, int, int | None]]:
    """The citizens `user_ids[first:end]` take a number at once."""
    takers = committed.user_ids[first:end]
    start = threading.Barrier(min(CONNECTIONS, len(takers)))

    def take(user_id: int) -> tuple[str, int, int | None]:
        # The first wave starts together to maximise contention on the counter row.
        if user_id in takers[:CONNECTIONS]:
            start.wait(timeout=60)
        issued = _take_one(committed, user_id, now)
        return issued.ticket.display, issued.ticket.number, issued.ahead

    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        return list(pool.map(take, takers))


def _take_one(committed: Committed, user_id: int, now: dt.datetime) -> Issued:
    """One citizen takes a number of category A, in a session and transaction of their own."""
    with committed.make_session() as session:
        issued = issue_ticket(
            session,
            category=session.get_one(ServiceCategory, committed.category_ids["A"]),
            user_id=user_id,
            source=TicketSource.HALL_CODE,
            actor=Actor("user", user_id),
            now=now,
            settings=committed.settings,
        )
        session.commit()
        return issued


def _kept_and_counted(committed: Committed) -> tuple[dict[int, int], dict[int, int]]:
    """Per category of the hall: the queued count the triggers kept, and the queued tickets."""
    category_ids = list(committed.category_ids.values())
    with committed.make_session() as session:
        kept = session.execute(
            select(QueueCount.category_id, func.sum(QueueCount.queued))
            .where(QueueCount.category_id.in_(category_ids))
            .group_by(QueueCount.category_id)
        ).all()
        counted = session.execute(
            select(Ticket.category_id, func.count())
            .where(Ticket.hall_id == committed.hall_id, Ticket.status.in_(QUEUED_STATUSES))
            .group_by(Ticket.category_id)
        ).all()
    return {c: int(n) for c, n in kept if n}, {c: int(n) for c, n in counted}


def test_200_concurrent_takes_get_200_distinct_consecutive_numbers(
    committed_hall: Committed,
) -> None:
    taken = _take_all(committed_hall, utcnow())
    displays = [display for display, _, _ in taken]
    assert len(set(displays)) == TAKERS
    assert sorted(displays) == [f"A{n:03d}" for n in range(1, TAKERS + 1)]
    # Nobody was called meanwhile: whoever drew number n had exactly n - 1 people ahead.
    assert all(ahead == number - 1 for _, number, ahead in taken)
    assert _kept_and_counted(committed_hall) == ({committed_hall.category_ids["A"]: TAKERS},) * 2


def test_four_windows_calling_concurrently_never_call_a_ticket_twice(
    app: Flask, committed_hall: Committed
) -> None:
    now = utcnow()
    _take_all(committed_hall, now)
    calls: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(len(committed_hall.window_ids))

    def work(window_id: int) -> None:
        start.wait(timeout=60)
        for _ in range(100):
            # Each thread is a request of its own: the app context names the message templates.
            with app.app_context(), committed_hall.make_session() as session:
                window = session.get(Window, window_id)
                try:
                    ticket = windows.call_next(
                        session,
                        window,
                        actor=Actor("staff", None),
                        now=now,
                        settings=committed_hall.settings,
                    )
                    # Finish at once so the window may call again.
                    window_action(
                        "serve", session, window, ticket.id, actor=Actor("staff", None), now=now
                    )
                    window_action(
                        "finish",
                        session,
                        window,
                        ticket.id,
                        matter=None,
                        actor=Actor("staff", None),
                        now=now,
                    )
                    session.commit()
                except QueueEmpty:
                    session.rollback()
                    return
                with lock:
                    calls.append(ticket.id)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(work, committed_hall.window_ids))
    assert len(calls) == len(set(calls)) == TAKERS
    with committed_hall.make_session() as session:
        statuses = session.scalars(
            select(Ticket.status).where(Ticket.hall_id == committed_hall.hall_id)
        ).all()
        call_rows = session.scalars(
            select(TicketTransition.ticket_id)
            .join(Ticket, Ticket.id == TicketTransition.ticket_id)
            .where(Ticket.hall_id == committed_hall.hall_id, TicketTransition.action == "call")
        ).all()
    assert set(statuses) == {TicketStatus.DONE}
    assert len(call_rows) == len(set(call_rows)) == TAKERS
    assert _kept_and_counted(committed_hall) == ({}, {})


@pytest.mark.parametrize("same_key", [False, True], ids=["plain", "idempotency-key"])
def test_one_citizen_tapping_at_once_gets_one_number_and_leaves_no_gap(
    committed_hall: Committed, same_key: bool
) -> None:
    now, user_id, taps = utcnow(), committed_hall.user_ids[0], 8
    start = threading.Barrier(taps)

    def tap(serial: int) -> str:
        with committed_hall.make_session() as session:
            category = session.get(ServiceCategory, committed_hall.category_ids["A"])
            start.wait(timeout=60)
            try:
                issued = issue_ticket(
                    session,
                    category=category,
                    user_id=user_id,
                    source=TicketSource.HALL_CODE,
                    actor=Actor("user", user_id),
                    now=now,
                    settings=committed_hall.settings,
                    idempotency_key="tap" if same_key else f"tap-{serial}",
                )
            except AlreadyHoldingTicket as refusal:
                session.rollback()
                return f"holding {refusal.details['ticket']['display']}"
            session.commit()
            return f"{'new' if issued.created else 'replay'} {issued.ticket.display}"

    with ThreadPoolExecutor(max_workers=taps) as pool:
        outcomes = sorted(pool.map(tap, range(taps)))
    again = "replay" if same_key else "holding"
    assert outcomes == sorted(["new A001"] + [f"{again} A001"] * (taps - 1))
    # The losers wrote nothing and moved no counter: the next citizen draws A002.
    assert [display for display, _, _ in _take_all_of(committed_hall, now, 1, 2)] == ["A002"]


def test_resends_of_one_call_next_racing_all_answer_the_one_ticket_called(
    app: Flask, committed_hall: Committed
) -> None:
    """The terminal route's order (earlier_call, then call_next with the key), 8 at once."""
    now = utcnow()
    _take_all_of(committed_hall, now, 0, 3)
    window_id, resends = committed_hall.window_ids[0], 8
    start = threading.Barrier(resends)

    def resend(_: int) -> int:
        with app.app_context(), committed_hall.make_session() as session:
            window = session.get(Window, window_id)
            start.wait(timeout=60)
            ticket = windows.earlier_call(session, window, "call-k1")
            if ticket is None:
                ticket = windows.call_next(
                    session,
                    window,
                    actor=Actor("staff", None),
                    now=now,
                    settings=committed_hall.settings,
                    idempotency_key="call-k1",
                )
            session.commit()
            return ticket.id

    with ThreadPoolExecutor(max_workers=resends) as pool:
        answered = list(pool.map(resend, range(resends)))
    assert len(set(answered)) == 1
    with committed_hall.make_session() as session:
        statuses = session.scalars(
            select(Ticket.status)
            .where(Ticket.hall_id == committed_hall.hall_id)
            .order_by(Ticket.number)
        ).all()
    assert statuses == [TicketStatus.CALLED, TicketStatus.WAITING, TicketStatus.WAITING]


@pytest.fixture
def signed_in_with_code(
    app: Flask, committed_hall: Committed
) -> Iterator[tuple[dict[str, str], dict[str, object]]]:
    """The first citizen signed in, and a take's body with the printed code; removed after."""
    user_id = committed_hall.user_ids[0]
    with committed_hall.make_session() as setup:
        code = codes.create_printed_code(
            setup, committed_hall.settings, committed_hall.hall_id, label=None, staff_id=None
        )
        pair = start_session(
            setup,
            principal_for(setup, "user", user_id),
            settings=app_token_settings(app),
            refresh_ttl_seconds=3600,
            now=utcnow(),
        )
        token = codes.printed_token(committed_hall.settings, code)
        setup.commit()
    body = {
        "code": token,
        "category_id": committed_hall.category_ids["A"],
        "latitude": HALL_LAT,
        "longitude": HALL_LNG,
    }
    try:
        yield {"Authorization": f"Bearer {pair.access_token}"}, body
    finally:
        with committed_hall.make_session() as cleanup:
            cleanup.execute(delete(RefreshToken).where(RefreshToken.family_id == pair.family_id))
            cleanup.execute(delete(LoginFamily).where(LoginFamily.id == pair.family_id))
            cleanup.execute(delete(HallCode).where(HallCode.hall_id == committed_hall.hall_id))
            # Nothing seals in tests (manual job runner): this test's entries are the unsealed ones.
            cleanup.execute(delete(AuditEntry).where(AuditEntry.seq.is_(None)))
            cleanup.commit()


def test_a_take_releases_the_counter_row_when_its_statement_ends(
    app: Flask,
    committed_hall: Committed,
    signed_in_with_code: tuple[dict[str, str], dict[str, object]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every take of a category waits for its counter row: the citizen's take holds it for its
    one statement, not until the answer is built and a COMMIT has gone a round trip later."""
    headers, body = signed_in_with_code
    with committed_hall.make_session() as earlier:
        # A number was drawn today already: the counter row is there to be locked.
        earlier.add(
            TicketCounter(
                category_id=committed_hall.category_ids["A"],
                service_day=local_day(utcnow()),
                last_number=0,
            )
        )
        earlier.commit()
    seen: dict[str, object] = {}
    issue = citizen_routes.issue_ticket

    def issue_then_probe(*args: object, **kwargs: object) -> Issued:
        issued = issue(*args, **kwargs)  # type: ignore[arg-type]
        # Back in the view, before it commits and answers, from a connection of its own: is
        # the counter row free, and is the ticket already there for everyone?
        with committed_hall.make_session() as probe:
            try:
                seen["counter"] = probe.execute(
                    select(TicketCounter.last_number)
                    .where(TicketCounter.category_id == issued.ticket.category_id)
                    .with_for_update(nowait=True)
                ).scalar_one()
            except OperationalError as error:
                seen["counter"] = type(error.orig).__name__
                probe.rollback()
            seen["queue_count"] = probe.execute(
                select(QueueCount.queued)
                .where(QueueCount.category_id == issued.ticket.category_id)
                .with_for_update(nowait=True)
            ).scalar_one()
            seen["ticket"] = probe.scalar(
                select(Ticket.display).where(Ticket.id == issued.ticket.id)
            )
        return issued

    monkeypatch.setattr(citizen_routes, "issue_ticket", issue_then_probe)
    with app.test_client() as client:
        taken = client.post("/api/v1/queue/tickets", json=body, headers=headers)

    assert taken.status_code == 201, taken.get_json()
    assert taken.get_json()["display"] == "A001"
    assert seen == {"counter": 1, "queue_count": 1, "ticket": "A001"}


def test_takes_calls_and_opposite_transfers_racing_keep_the_queued_counts_true(
    app: Flask, committed_hall: Committed
) -> None:
    """The triggers move two categories' counts for a transfer, locking them in key order:
    transfers both ways at once, with takes and calls among them, neither deadlock nor drift."""
    now = utcnow()
    with committed_hall.make_session() as session:
        other = ServiceCategory(hall_id=committed_hall.hall_id, name="社保业务", prefix="B")
        session.add(other)
        session.commit()
        committed_hall.category_ids["B"] = other.id
    a, b = committed_hall.category_ids["A"], committed_hall.category_ids["B"]
    _take_all_of(committed_hall, now, 0, 120)
    with committed_hall.make_session() as session:
        ticket_ids = session.scalars(
            select(Ticket.id).where(Ticket.hall_id == committed_hall.hall_id).order_by(Ticket.id)
        ).all()
        session.execute(
            update(Ticket)
            .where(Ticket.id.in_(ticket_ids[::2]))
            .values(category_id=b, status=TicketStatus.TRANSFERRED)
        )
        session.commit()
    movers = ticket_ids[:32]
    start = threading.Barrier(len(movers))

    def transfer(ticket_id: int) -> None:
        start.wait(timeout=60)
        with committed_hall.make_session() as session:
            # Whichever way it stands: A to B, B to A.
            session.execute(
                update(Ticket)
                .where(Ticket.id == ticket_id)
                .values(
                    category_id=case((Ticket.category_id == a, b), else_=a),
                    status=TicketStatus.TRANSFERRED,
                )
            )
            session.commit()

    def call(window_id: int) -> None:
        with app.app_context(), committed_hall.make_session() as session:
            window = session.get(Window, window_id)
            try:
                windows.call_next(
                    session,
                    window,
                    actor=Actor("staff", None),
                    now=now,
                    settings=committed_hall.settings,
                )
                session.commit()
            except QueueEmpty:
                session.rollback()

    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        moves = [pool.submit(transfer, ticket_id) for ticket_id in movers]
        takes = [
            pool.submit(_take_one, committed_hall, user_id, now)
            for user_id in committed_hall.user_ids[120:124]
        ]
        calls = [pool.submit(call, window_id) for window_id in committed_hall.window_ids]
        for future in [*moves, *takes, *calls]:
            future.result(timeout=120)

    kept, counted = _kept_and_counted(committed_hall)
    assert kept == counted
    assert sum(counted.values()) == 124 - len(committed_hall.window_ids)
