"""Taking numbers and the ticket state machine, through the service."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.service import Actor
from app.halls.models import WindowStatus
from app.notify.models import NotificationOutbox
from app.queueing import transitions, windows
from app.queueing.demo import QueueHall
from app.queueing.errors import (
    AlreadyHoldingTicket,
    CapReached,
    HallClosed,
    IllegalTransition,
    LateReturnUsed,
    QueueEmpty,
    RecallsNotExhausted,
    WindowBusy,
    WindowNotOpen,
)
from app.queueing.models import (
    GreenChannelFlag,
    Ticket,
    TicketCounter,
    TicketPriority,
    TicketStatus,
    TicketTransition,
)
from app.queueing.order import queued_in_category
from tests.factories.queueing import window_action
from wechat.templates import check_template_data

CLERK = Actor("staff", None)
NOW = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)  # Friday 10:00 in Panyu


def test_numbers_are_consecutive_per_category_and_day(create_queue_hall, create_user, take_ticket):
    qh: QueueHall = create_queue_hall()
    a, b = qh.categories["A"], qh.categories["B"]
    tickets = [take_ticket(create_user(), a, now=NOW) for _ in range(3)]
    other = take_ticket(create_user(), b, now=NOW)
    assert [t.display for t in tickets] == ["A001", "A002", "A003"]
    assert other.display == "B001"
    assert all(t.service_day == dt.date(2026, 11, 27) for t in tickets)


def test_numbers_past_999_keep_every_digit(create_queue_hall, create_user, take_ticket, session):
    qh: QueueHall = create_queue_hall(daily_cap=2000)
    a = qh.categories["A"]
    session.add(TicketCounter(category_id=a.id, service_day=NOW.date(), last_number=998))
    session.flush()
    tickets = [take_ticket(create_user(), a, now=NOW) for _ in range(2)]
    assert [(t.number, t.display) for t in tickets] == [(999, "A999"), (1000, "A1000")]
    # What the database holds, not only the object the take returned.
    session.expire_all()
    assert [session.get(Ticket, t.id).display for t in tickets] == ["A999", "A1000"]


def test_numbering_restarts_after_local_midnight(create_queue_hall, create_user, take_ticket):
    qh = create_queue_hall()
    a = qh.categories["A"]
    late = dt.datetime(2026, 11, 27, 15, 59, 58, tzinfo=dt.UTC)  # 23:59:58 local
    first = take_ticket(create_user(), a, now=late)
    second = take_ticket(create_user(), a, now=late)
    after = take_ticket(create_user(), a, now=late + dt.timedelta(seconds=3))  # 00:00:01 next day
    assert (first.display, second.display) == ("A001", "A002")
    assert after.display == "A001" and after.service_day == dt.date(2026, 11, 28)


def test_one_active_ticket_per_citizen_and_category(create_queue_hall, create_user, take_ticket):
    qh = create_queue_hall()
    user = create_user()
    first = take_ticket(user, qh.categories["A"], now=NOW)
    with pytest.raises(AlreadyHoldingTicket) as caught:
        take_ticket(user, qh.categories["A"], now=NOW)
    assert caught.value.details["ticket"]["display"] == first.display
    assert take_ticket(user, qh.categories["B"], now=NOW).display == "B001"


def test_idempotency_key_returns_the_same_ticket(create_queue_hall, create_user, take_ticket):
    qh = create_queue_hall()
    user = create_user()
    first = take_ticket(user, qh.categories["A"], now=NOW, idempotency_key="k-1")
    again = take_ticket(user, qh.categories["A"], now=NOW, idempotency_key="k-1")
    assert again.id == first.id


def test_daily_cap_refuses_and_leaves_no_gap(create_queue_hall, create_user, take_ticket, session):
    qh = create_queue_hall(daily_cap=2)
    a = qh.categories["A"]
    take_ticket(create_user(), a, now=NOW)
    take_ticket(create_user(), a, now=NOW)
    with pytest.raises(CapReached):
        take_ticket(create_user(), a, now=NOW)
    a.daily_cap = 3
    assert take_ticket(create_user(), a, now=NOW).display == "A003"


def test_closed_hall_refuses(create_queue_hall, create_user, take_ticket):
    qh = create_queue_hall(hours=[(d, dt.time(9), dt.time(17)) for d in range(5)])
    evening = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)  # 18:00 local
    with pytest.raises(HallClosed):
        take_ticket(create_user(), qh.categories["A"], now=evening)


def test_call_order_due_appointment_then_green_then_fifo(
    create_queue_hall, create_user, take_ticket, session: Session
):
    qh = create_queue_hall()
    a, window = qh.categories["A"], qh.windows[2]
    normal = take_ticket(create_user(), a, now=NOW)
    elderly = take_ticket(
        create_user(birth_date=dt.date(1950, 1, 1)), a, now=NOW + dt.timedelta(seconds=1)
    )
    disabled_user = create_user()
    session.add(GreenChannelFlag(user_id=disabled_user.id))
    disabled = take_ticket(disabled_user, a, now=NOW + dt.timedelta(seconds=2))
    not_due = take_ticket(
        create_user(),
        a,
        now=NOW + dt.timedelta(seconds=3),
        priority=TicketPriority.APPOINTMENT,
        due_at=NOW + dt.timedelta(hours=1),
    )
    due = take_ticket(
        create_user(),
        a,
        now=NOW + dt.timedelta(seconds=4),
        priority=TicketPriority.APPOINTMENT,
        due_at=NOW,
    )
    assert elderly.green_reason == "elderly" and disabled.green_reason == "disability"
    order = []
    at = NOW + dt.timedelta(minutes=1)
    for _ in range(5):
        ticket = windows.call_next(
            session, window, actor=CLERK, now=at, settings=_settings(session)
        )
        order.append(ticket.id)
        window_action("serve", session, window, ticket.id, actor=CLERK, now=at)
        window_action("finish", session, window, ticket.id, matter="x", actor=CLERK, now=at)
    assert order == [due.id, elderly.id, disabled.id, normal.id, not_due.id]
    with pytest.raises(QueueEmpty):
        windows.call_next(session, window, actor=CLERK, now=at, settings=_settings(session))


def _settings(session: Session):
    from flask import current_app

    from app.queueing.settings import from_config

    return from_config(current_app.config)


def test_state_machine_and_guarded_transitions(
    create_queue_hall, create_user, take_ticket, session
):
    qh = create_queue_hall()
    window = qh.windows[2]
    ticket = take_ticket(create_user(), qh.categories["A"], now=NOW)
    s = _settings(session)
    called = windows.call_next(session, window, actor=CLERK, now=NOW, settings=s)
    assert called.id == ticket.id and called.status == TicketStatus.CALLED
    with pytest.raises(WindowBusy):
        windows.call_next(session, window, actor=CLERK, now=NOW, settings=s)
    window_action("serve", session, window, ticket.id, actor=CLERK, now=NOW)
    with pytest.raises(IllegalTransition):  # a doubled click
        window_action("serve", session, window, ticket.id, actor=CLERK, now=NOW)
    window_action(
        "hold", session, window, ticket.id, actor=CLERK, now=NOW + dt.timedelta(minutes=4)
    )
    window_action(
        "resume", session, window, ticket.id, actor=CLERK, now=NOW + dt.timedelta(minutes=10)
    )
    done = window_action(
        "finish",
        session,
        window,
        ticket.id,
        matter="社保卡补办",
        actor=CLERK,
        now=NOW + dt.timedelta(minutes=12),
    )
    assert done.status == TicketStatus.DONE and done.matter == "社保卡补办"
    assert done.service_seconds == pytest.approx(6 * 60)
    actions = session.scalars(
        select(TicketTransition.action)
        .where(TicketTransition.ticket_id == ticket.id)
        .order_by(TicketTransition.id)
    ).all()
    assert actions == ["take", "call", "serve", "hold", "resume", "finish"]


def test_stale_version_is_refused(create_queue_hall, create_user, take_ticket, session):
    qh = create_queue_hall()
    window = qh.windows[2]
    take_ticket(create_user(), qh.categories["A"], now=NOW)
    ticket = windows.call_next(session, window, actor=CLERK, now=NOW, settings=_settings(session))
    stale = ticket.version
    window_action("recall", session, window, ticket.id, actor=CLERK, now=NOW, version=stale)
    with pytest.raises(IllegalTransition):
        window_action("recall", session, window, ticket.id, actor=CLERK, now=NOW, version=stale)


def test_no_show_after_recalls_and_one_late_return(
    create_queue_hall, create_user, take_ticket, session
):
    qh = create_queue_hall()
    a, window = qh.categories["A"], qh.windows[2]
    s = _settings(session)
    first = take_ticket(create_user(), a, now=NOW)
    others = [
        take_ticket(create_user(), a, now=NOW + dt.timedelta(seconds=i + 1)) for i in range(5)
    ]
    windows.call_next(session, window, actor=CLERK, now=NOW, settings=s)
    with pytest.raises(RecallsNotExhausted):
        window_action("no_show", session, window, first.id, actor=CLERK, now=NOW, settings=s)
    for _ in range(s.max_recalls):
        window_action("recall", session, window, first.id, actor=CLERK, now=NOW)
    gone = window_action("no_show", session, window, first.id, actor=CLERK, now=NOW, settings=s)
    assert gone.status == TicketStatus.NO_SHOW and gone.recall_count == s.max_recalls
    back = transitions.late_return(
        session, first, actor=CLERK, now=NOW + dt.timedelta(minutes=5), settings=s
    )
    assert back.status == TicketStatus.WAITING
    order = [t.id for t in queued_in_category(session, a.id, back.service_day, NOW)]
    assert order.index(first.id) == s.late_return_places  # N people now ahead of them
    assert order[: s.late_return_places] == [t.id for t in others[: s.late_return_places]]
    # Called again, missed again: no second late return.
    session.refresh(first)
    windows.call_number(session, window, first.id, actor=CLERK, now=NOW, settings=s)
    for _ in range(s.max_recalls):
        window_action("recall", session, window, first.id, actor=CLERK, now=NOW)
    window_action("no_show", session, window, first.id, actor=CLERK, now=NOW, settings=s)
    with pytest.raises(LateReturnUsed):
        transitions.late_return(session, first, actor=CLERK, now=NOW, settings=s)


def test_a_no_show_counts_for_the_window_that_called_it(
    create_queue_hall, create_user, take_ticket, session
):
    """Before, a no-show lost its window: the statistics by window (过号数) were always 0."""
    from app.queue_stats.service import GroupBy, compute

    qh = create_queue_hall()
    window, s = qh.windows[2], _settings(session)
    ticket = take_ticket(create_user(), qh.categories["A"], now=NOW)
    windows.call_next(session, window, actor=CLERK, now=NOW, settings=s)
    for _ in range(s.max_recalls):
        window_action("recall", session, window, ticket.id, actor=CLERK, now=NOW)
    window_action("no_show", session, window, ticket.id, actor=CLERK, now=NOW, settings=s)

    day = ticket.service_day
    rows = compute(session, qh.hall.id, start=day, end=day, group_by=GroupBy.WINDOW)
    assert [(r.window_id, r.no_shows) for r in rows] == [(window.id, 1)]
    # Back the same day (过号顺延): queued again, at no window.
    back = transitions.late_return(session, ticket, actor=CLERK, now=NOW, settings=s)
    assert back.status == TicketStatus.WAITING and back.window_id is None


def test_transfer_keeps_number_and_take_time(create_queue_hall, create_user, take_ticket, session):
    qh = create_queue_hall()
    s = _settings(session)
    a, b = qh.categories["A"], qh.categories["B"]
    moved = take_ticket(create_user(), a, now=NOW)
    later_b = take_ticket(create_user(), b, now=NOW + dt.timedelta(minutes=1))
    windows.call_next(session, qh.windows[2], actor=CLERK, now=NOW, settings=s)
    window_action("serve", session, qh.windows[2], moved.id, actor=CLERK, now=NOW)
    after = window_action(
        "transfer",
        session,
        qh.windows[2],
        moved.id,
        category_id=b.id,
        target_window_id=None,
        actor=CLERK,
        now=NOW,
    )
    assert (after.status, after.display, after.category_id) == (
        TicketStatus.TRANSFERRED,
        "A001",
        b.id,
    )
    assert after.taken_at == NOW
    # Its original take time puts it before the B ticket taken later.
    called = windows.call_next(session, qh.windows[3], actor=CLERK, now=NOW, settings=s)
    assert called.id == moved.id and later_b.status == TicketStatus.WAITING


def test_transfer_to_a_window_only_that_window_calls_it(
    create_queue_hall, create_user, take_ticket, session
):
    qh = create_queue_hall()
    s = _settings(session)
    ticket = take_ticket(create_user(), qh.categories["A"], now=NOW)
    windows.call_next(session, qh.windows[2], actor=CLERK, now=NOW, settings=s)
    window_action(
        "transfer",
        session,
        qh.windows[2],
        ticket.id,
        category_id=None,
        target_window_id=qh.windows[1].id,
        actor=CLERK,
        now=NOW,
    )
    with pytest.raises(QueueEmpty):
        windows.call_next(session, qh.windows[2], actor=CLERK, now=NOW, settings=s)
    assert (
        windows.call_next(session, qh.windows[1], actor=CLERK, now=NOW, settings=s).id == ticket.id
    )


def _transfer_to(session, qh, ticket, target):  # type: ignore[no-untyped-def]
    windows.call_next(session, qh.windows[2], actor=CLERK, now=NOW, settings=_settings(session))
    window_action(
        "transfer",
        session,
        qh.windows[2],
        ticket.id,
        category_id=None,
        target_window_id=target.id,
        actor=CLERK,
        now=NOW,
    )


def test_a_ticket_sent_to_a_window_that_then_closes_goes_back_to_its_category_queue(
    create_queue_hall, create_user, take_ticket, session
):
    """Before, it stayed addressed to the closed window: no other window could call it and the
    citizen waited until the closing sweep expired the number."""
    qh = create_queue_hall()
    ticket = take_ticket(create_user(), qh.categories["A"], now=NOW)
    _transfer_to(session, qh, ticket, qh.windows[1])

    windows.set_window_status(session, qh.windows[1], WindowStatus.CLOSED, clerk_id=None, now=NOW)

    session.refresh(ticket)
    assert ticket.status == TicketStatus.TRANSFERRED and ticket.target_window_id is None
    called = windows.call_next(
        session, qh.windows[2], actor=CLERK, now=NOW, settings=_settings(session)
    )
    assert called.id == ticket.id


def test_a_ticket_sent_to_a_window_that_stops_serving_its_category_goes_back_to_the_queue(
    client, create_queue_hall, create_user, take_ticket, session, create_staff, staff_headers
):
    qh = create_queue_hall()
    ticket = take_ticket(create_user(), qh.categories["A"], now=NOW)
    _transfer_to(session, qh, ticket, qh.windows[1])
    session.commit()

    changed = client.patch(
        f"/api/v1/halls/windows/{qh.windows[1].id}",
        json={"category_ids": [qh.categories["B"].id]},
        headers=staff_headers(create_staff()),
    )

    assert changed.status_code == 200, changed.json
    session.refresh(ticket)
    assert ticket.status == TicketStatus.TRANSFERRED and ticket.target_window_id is None


def test_a_transfer_into_a_category_where_the_citizen_holds_a_number_says_so(
    create_queue_hall, create_user, take_ticket, session
):
    """The one-active-ticket-per-category index refused it, and the clerk was told 窗口忙."""
    qh = create_queue_hall()
    citizen = create_user()
    at_counter = take_ticket(citizen, qh.categories["A"], now=NOW)
    take_ticket(citizen, qh.categories["B"], now=NOW)
    windows.call_next(session, qh.windows[2], actor=CLERK, now=NOW, settings=_settings(session))

    with pytest.raises(AlreadyHoldingTicket):
        window_action(
            "transfer",
            session,
            qh.windows[2],
            at_counter.id,
            category_id=qh.categories["B"].id,
            target_window_id=None,
            actor=CLERK,
            now=NOW,
        )
    session.refresh(at_counter)
    assert at_counter.status == TicketStatus.CALLED


def test_a_late_return_after_taking_a_new_number_keeps_the_new_one(
    create_queue_hall, create_user, take_ticket, session
):
    qh = create_queue_hall()
    a, window, s = qh.categories["A"], qh.windows[2], _settings(session)
    citizen = create_user()
    missed = take_ticket(citizen, a, now=NOW)
    windows.call_next(session, window, actor=CLERK, now=NOW, settings=s)
    for _ in range(s.max_recalls):
        window_action("recall", session, window, missed.id, actor=CLERK, now=NOW)
    window_action("no_show", session, window, missed.id, actor=CLERK, now=NOW, settings=s)
    take_ticket(citizen, a, now=NOW + dt.timedelta(minutes=1))

    with pytest.raises(AlreadyHoldingTicket):
        transitions.late_return(session, missed, actor=CLERK, now=NOW, settings=s)


def test_no_ticket_is_sent_to_a_closed_window(create_queue_hall, create_user, take_ticket, session):
    qh = create_queue_hall()
    ticket = take_ticket(create_user(), qh.categories["A"], now=NOW)
    windows.set_window_status(session, qh.windows[1], WindowStatus.CLOSED, clerk_id=None, now=NOW)

    with pytest.raises(WindowNotOpen):
        _transfer_to(session, qh, ticket, qh.windows[1])


def test_closing_time_expires_the_queue_but_not_the_citizens_at_the_counters(
    create_queue_hall, create_user, take_ticket, session
):
    """At 17:00 a clerk may still be serving the last citizen, or waiting for one who went to
    fetch a document (挂起): those tickets are the clerk's to finish, not the sweep's. Before,
    the sweep expired them mid-service: the clerk's finish was refused (ILLEGAL_TRANSITION),
    the citizen could never rate the service and the statistics lost it."""
    qh = create_queue_hall(
        hours=[(d, dt.time(9), dt.time(17)) for d in range(7)],
        windows=[(1, "A"), (2, "A")],
    )
    serving, held, waiting = (
        take_ticket(create_user(), qh.categories["A"], now=NOW) for _ in range(3)
    )
    s = _settings(session)
    before_closing = dt.datetime(2026, 11, 27, 8, 50, tzinfo=dt.UTC)  # 16:50 local
    for window, ticket in ((qh.windows[1], serving), (qh.windows[2], held)):
        assert (
            windows.call_next(session, window, actor=CLERK, now=before_closing, settings=s).id
            == ticket.id
        )
        window_action("serve", session, window, ticket.id, actor=CLERK, now=before_closing)
    window_action("hold", session, qh.windows[2], held.id, actor=CLERK, now=before_closing)

    after_closing = dt.datetime(2026, 11, 27, 9, 5, tzinfo=dt.UTC)  # 17:05 local
    assert transitions.expire_leftovers(session, now=after_closing, hall_id=qh.hall.id) == 1

    for ticket, status in (
        (waiting, TicketStatus.EXPIRED),
        (serving, TicketStatus.SERVING),
        (held, TicketStatus.HELD),
    ):
        session.refresh(ticket)
        assert ticket.status == status
    done = window_action(
        "finish",
        session,
        qh.windows[1],
        serving.id,
        matter="社保卡补办",
        actor=CLERK,
        now=after_closing,
    )
    assert done.status == TicketStatus.DONE
    # The next morning nothing of the day before is left active.
    next_morning = dt.datetime(2026, 11, 28, 1, 0, tzinfo=dt.UTC)
    assert transitions.expire_leftovers(session, now=next_morning, hall_id=qh.hall.id) == 1
    session.refresh(held)
    assert held.status == TicketStatus.EXPIRED


def test_leftovers_expire_at_closing_and_history_stays(
    create_queue_hall, create_user, take_ticket, session
):
    qh = create_queue_hall(hours=[(d, dt.time(9), dt.time(17)) for d in range(7)])
    ticket = take_ticket(create_user(), qh.categories["A"], now=NOW)
    assert transitions.expire_leftovers(session, now=NOW, hall_id=qh.hall.id) == 0
    after_closing = dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.UTC)  # 17:30 local
    assert transitions.expire_leftovers(session, now=after_closing, hall_id=qh.hall.id) == 1
    session.refresh(ticket)
    assert ticket.status == TicketStatus.EXPIRED
    assert session.scalar(
        select(TicketTransition.id).where(
            TicketTransition.action == "expire", TicketTransition.ticket_id == ticket.id
        )
    )


def test_notifications_near_and_called_are_sent_once(
    create_queue_hall, create_user, take_ticket, session
):
    qh = create_queue_hall(windows=[(2, "A")])
    s = _settings(session)
    users = [create_user() for _ in range(6)]
    tickets = [
        take_ticket(u, qh.categories["A"], now=NOW + dt.timedelta(seconds=i))
        for i, u in enumerate(users)
    ]
    window = qh.windows[2]
    for _ in range(2):
        called = windows.call_next(session, window, actor=CLERK, now=NOW, settings=s)
        window_action("serve", session, window, called.id, actor=CLERK, now=NOW)
        window_action("finish", session, window, called.id, matter=None, actor=CLERK, now=NOW)
    rows = session.scalars(select(NotificationOutbox).order_by(NotificationOutbox.id)).all()
    keys = [r.dedupe_key for r in rows]
    assert keys.count(f"queue:ticket:{tickets[0].id}:called") == 1
    assert f"queue:ticket:{tickets[5].id}:near" in keys  # 3 ahead after the second call
    assert len(keys) == len(set(keys))
    near = next(r for r in rows if r.dedupe_key == f"queue:ticket:{tickets[5].id}:near")
    assert near.data["number2"] == "3"


def test_a_served_citizen_is_invited_to_rate_and_a_no_show_is_not(
    create_queue_hall, create_user, take_ticket, session
):
    qh = create_queue_hall(windows=[(2, "A")])
    s = _settings(session)
    served, absent = (take_ticket(create_user(), qh.categories["A"], now=NOW) for _ in range(2))
    window = qh.windows[2]
    windows.call_next(session, window, actor=CLERK, now=NOW, settings=s)
    window_action("serve", session, window, served.id, actor=CLERK, now=NOW)
    window_action("finish", session, window, served.id, matter="居住证办理", actor=CLERK, now=NOW)
    windows.call_next(session, window, actor=CLERK, now=NOW, settings=s)
    for _ in range(s.max_recalls):
        window_action("recall", session, window, absent.id, actor=CLERK, now=NOW)
    window_action("no_show", session, window, absent.id, actor=CLERK, now=NOW)

    invites = session.scalars(
        select(NotificationOutbox).where(NotificationOutbox.template_key == "rating_invite")
    ).all()
    assert [row.source_id for row in invites] == [served.id]
    invite = invites[0]
    assert invite.data["thing1"] == "居住证办理"  # the matter the clerk recorded
    assert invite.data["time3"] == "2026-11-27 10:00"  # Beijing time
    assert invite.page == f"pages/queue/rate?id={served.id}"
    assert check_template_data(invite.data) == {}
