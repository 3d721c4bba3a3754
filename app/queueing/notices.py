"""The WeChat messages a citizen gets about a ticket: called to a window, almost your turn,
and, once served, an invitation to rate the service (好差评).

Both go through the notification outbox inside the transition's own transaction, so a
message is sent only for a call that committed, and once (a dedupe key per ticket and kind).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import calendar
from app.halls.models import ServiceCategory, Window
from app.notify import outbox
from app.organisation.models import Hall
from app.queueing.models import QUEUED_STATUSES, Ticket
from app.queueing.order import queued_in_category
from app.queueing.settings import QueueSettings


def _hall_name(session: Session, hall_id: int) -> str:
    hall = session.get(Hall, hall_id)
    return (hall.name if hall else "")[:20]  # a subscribe message's thing field holds 20


def notify_called(session: Session, ticket: Ticket, window: Window, now: dt.datetime) -> None:
    """Tell the citizen which window calls them."""
    if ticket.user_id is None:
        return
    outbox.enqueue(
        session,
        user_id=ticket.user_id,
        template_key="queue_called",
        data={
            "character_string1": ticket.display,
            "thing2": _hall_name(session, ticket.hall_id),
            "thing3": f"{window.number}号窗口",
            "time4": now.astimezone(calendar.LOCAL_TZ).strftime("%Y-%m-%d %H:%M"),
        },
        page=f"pages/queue/ticket?id={ticket.id}",
        dedupe_key=f"queue:ticket:{ticket.id}:called",
        source=("ticket", ticket.id),
        now=now,
    )


def notify_near(
    session: Session, category_id: int, day: dt.date, now: dt.datetime, settings: QueueSettings
) -> None:
    """Tell the citizens with at most N people ahead, once each."""
    # Every call asks: only the head of the queue is read, however long the queue.
    order = queued_in_category(session, category_id, day, now, first=settings.near_notice_ahead + 1)
    ahead_of = {t.id: ahead for ahead, t in enumerate(order) if not t.notified_near and t.user_id}
    if not ahead_of:
        return
    # Lock only the rows nobody else holds: a ticket another window is claiming right now is
    # skipped (it is being called, or that window notifies it). Waiting here for other windows'
    # locks while holding our own would deadlock two windows calling at once.
    locked = session.scalars(
        select(Ticket)
        .where(
            Ticket.id.in_(list(ahead_of)),
            Ticket.notified_near.is_(False),
            Ticket.status.in_(QUEUED_STATUSES),
        )
        .order_by(Ticket.id)
        .with_for_update(skip_locked=True)
    ).all()
    for ticket in locked:
        assert ticket.user_id is not None
        session.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id)
            .values(notified_near=True)
            .execution_options(synchronize_session=False)
        )
        outbox.enqueue(
            session,
            user_id=ticket.user_id,
            template_key="queue_near",
            data={
                "character_string1": ticket.display,
                "number2": str(ahead_of[ticket.id]),
                "thing3": _hall_name(session, ticket.hall_id),
            },
            page=f"pages/queue/ticket?id={ticket.id}",
            dedupe_key=f"queue:ticket:{ticket.id}:near",
            source=("ticket", ticket.id),
            now=now,
        )
        session.expire(ticket, ["notified_near"])


def notify_rating_invite(session: Session, ticket: Ticket, now: dt.datetime) -> None:
    """Invite the citizen to rate the service they just had at a window."""
    if ticket.user_id is None:
        return
    category = session.get(ServiceCategory, ticket.category_id)
    matter = ticket.matter or (category.name if category else "窗口服务")
    outbox.enqueue(
        session,
        user_id=ticket.user_id,
        template_key="rating_invite",
        data={
            "thing1": matter[:20],
            "thing2": _hall_name(session, ticket.hall_id),
            "time3": now.astimezone(calendar.LOCAL_TZ).strftime("%Y-%m-%d %H:%M"),
            "thing4": "请对本次服务作出评价",
        },
        page=f"pages/queue/rate?id={ticket.id}",
        dedupe_key=f"queue:ticket:{ticket.id}:rating_invite",
        source=("ticket", ticket.id),
        now=now,
    )
