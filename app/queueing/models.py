"""Queue tickets, their transitions, the per-day number counters and hall codes.

A ticket's number is `prefix + zero-padded number` (A001), unique per hall category and
local (Asia/Shanghai) service day. Numbers come from `TicketCounter`, incremented by an atomic
upsert in the same transaction that inserts the ticket, so a rolled-back take leaves no gap
and two takes never share a number.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, created_at, intpk, str64, str_enum


class TicketStatus(enum.StrEnum):
    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    HELD = "held"  # 挂起: the citizen fetches a missing document, back to the same window
    # Waiting again after a transfer to another category or window, with its number and take
    # time kept; callable like WAITING.
    TRANSFERRED = "transferred"
    DONE = "done"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # left over at closing time

    @property
    def is_active(self) -> bool:
        return self not in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {TicketStatus.DONE, TicketStatus.NO_SHOW, TicketStatus.CANCELLED, TicketStatus.EXPIRED}
)
ACTIVE_STATUSES = tuple(s for s in TicketStatus if s not in FINAL_STATUSES)
QUEUED_STATUSES = (TicketStatus.WAITING, TicketStatus.TRANSFERRED)  # what call-next may claim
AT_COUNTER = (TicketStatus.CALLED, TicketStatus.SERVING)  # holding a window
# A ticket not yet final, in SQL: the predicate of the one-active-ticket index below, and the
# take's test for a ticket already held. Constants: an IN of bound values is an "expanding"
# parameter, which SQLAlchemy renders into the statement anew on every execute; the same text
# as the index's also lets PostgreSQL answer the test from that index.
ACTIVE_TICKET_SQL = "status NOT IN ({})".format(
    ",".join(f"'{status.value}'" for status in TicketStatus if status in FINAL_STATUSES)
)


class TicketPriority(enum.IntEnum):
    """Call order class: higher first (appointments only once `due_at` has come)."""

    NORMAL = 0
    GREEN = 1  # 绿色通道: the elderly and people with disabilities
    APPOINTMENT = 2  # a checked-in appointment; callable ahead of everyone once due


class TicketSource(enum.StrEnum):
    HALL_CODE = "hall_code"  # the printed code, with location
    DYNAMIC_CODE = "dynamic_code"  # the entrance screen's rotating code
    TERMINAL = "terminal"  # window terminal / kiosk, via the personal code
    APPOINTMENT = "appointment"  # check-in of a booked appointment


class TicketCounter(Base):
    """The last number issued per category and local service day."""

    __tablename__ = "ticket_counters"

    category_id: Mapped[int] = mapped_column(
        ForeignKey("service_categories.id", ondelete="CASCADE"), primary_key=True
    )
    service_day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class QueueCount(Base):
    """How many tickets are queued (waiting or transferred) in a category on a service day.

    Kept by triggers on `tickets` (migration 0028): every insert, delete, and change of a
    ticket's status, category or day moves it, whoever writes. A take reads it instead of
    counting the queue's tickets, which cost a heap visit per queued ticket on PostgreSQL (about
    0.4 µs each; a bench's queue of 2,000 made it most of the database's work per take).
    """

    __tablename__ = "queue_counts"

    category_id: Mapped[int] = mapped_column(
        ForeignKey("service_categories.id", ondelete="CASCADE"), primary_key=True
    )
    service_day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    queued: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    """One queue number of one citizen (or an anonymous kiosk taker) on one day."""

    __tablename__ = "tickets"
    __table_args__ = (
        # Numbers are unique within the category that issued them; a transfer changes
        # `category_id` but never the issuing category nor the number.
        UniqueConstraint("issued_category_id", "service_day", "number"),
        UniqueConstraint("user_id", "idempotency_key"),
        # At most one active ticket per citizen per (current) category, enforced last by the db.
        Index(
            "uq_tickets_active_user_category",
            "user_id",
            "category_id",
            unique=True,
            sqlite_where=text(ACTIVE_TICKET_SQL),
            postgresql_where=text(ACTIVE_TICKET_SQL),
        ),
        # At most one called/serving ticket per window.
        Index(
            "uq_tickets_window_at_counter",
            "window_id",
            unique=True,
            sqlite_where=text("status IN ('called','serving')"),
            postgresql_where=text("status IN ('called','serving')"),
        ),
        Index("ix_tickets_queue", "hall_id", "service_day", "status", "category_id"),
        # Only the tickets an appointment's check-in issued: a walk-in's NULL is not indexed.
        Index(
            "ix_tickets_appointment_id",
            "appointment_id",
            sqlite_where=text("appointment_id IS NOT NULL"),
            postgresql_where=text("appointment_id IS NOT NULL"),
        ),
        # A position counts the people ahead in its category's queue (a take reads QueueCount).
        Index("ix_tickets_category_day_status", "category_id", "service_day", "status"),
    )

    id: Mapped[intpk]
    hall_id: Mapped[int] = mapped_column(ForeignKey("halls.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("service_categories.id"))
    issued_category_id: Mapped[int] = mapped_column(ForeignKey("service_categories.id"))
    service_day: Mapped[dt.date] = mapped_column(Date)
    number: Mapped[int] = mapped_column(Integer)
    display: Mapped[str] = mapped_column(String(8))  # "A012"
    # Looked up through the unique (user_id, idempotency_key), which leads with it.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[TicketStatus] = mapped_column(
        str_enum(TicketStatus), default=TicketStatus.WAITING
    )
    source: Mapped[TicketSource] = mapped_column(str_enum(TicketSource))
    priority: Mapped[int] = mapped_column(Integer, default=TicketPriority.NORMAL)
    # For appointment tickets: the slot start; they jump the queue only from then on.
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    green_reason: Mapped[str | None] = mapped_column(String(16))  # elderly | disability
    appointment_id: Mapped[int | None] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(64))

    # The original take time, kept through transfers; FIFO orders by `queue_at`, which equals
    # it except after a late return (过号顺延) that puts the ticket some places back.
    taken_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    queue_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # The window that called it (or holds it); a transfer to a window sets `target_window_id`
    # and only that window may call it next.
    window_id: Mapped[int | None] = mapped_column(ForeignKey("windows.id"))
    target_window_id: Mapped[int | None] = mapped_column(ForeignKey("windows.id"))
    called_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    serving_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Seconds of actual service (serving, minus holds), for the rolling mean and statistics.
    service_seconds: Mapped[float | None]
    recall_count: Mapped[int] = mapped_column(Integer, default=0)
    late_return_used: Mapped[bool] = mapped_column(Boolean, default=False)
    matter: Mapped[str | None] = mapped_column(String(128))  # the matter handled, at finish
    # Notifications already queued ("3 ahead", "called") are deduped by the outbox too.
    notified_near: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[created_at]

    transitions: Mapped[list[TicketTransition]] = relationship(
        back_populates="ticket", order_by="TicketTransition.id", lazy="raise_on_sql"
    )


def served_so_far(ticket: Any, now: dt.datetime) -> float:
    """Seconds of service a ticket (or a row with its columns) has had by `now`, holds excluded."""
    started = ticket.serving_started_at or now
    return (ticket.service_seconds or 0.0) + max(0.0, (now - started).total_seconds())


class TicketTransition(Base):
    """One state change of a ticket, with who did it and when; never deleted."""

    __tablename__ = "ticket_transitions"
    __table_args__ = (
        # A terminal resending the same call-next (a balancer retry, a double tap on a flaky
        # network) names the call it made; at one window a key names one call.
        Index(
            "uq_ticket_transitions_window_key",
            "window_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
            sqlite_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[intpk]
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # take, call, recall, serve, hold, ...
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_kind: Mapped[str] = mapped_column(String(8))  # user | staff | system
    actor_id: Mapped[int | None]
    window_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(64))

    ticket: Mapped[Ticket] = relationship(back_populates="transitions")


class HallCodeKind(enum.StrEnum):
    PRINTED = "printed"


class HallCode(Base):
    """A printed hall QR code: the token names this row, so revoking the row kills the code."""

    __tablename__ = "hall_codes"

    id: Mapped[intpk]
    hall_id: Mapped[int] = mapped_column(ForeignKey("halls.id", ondelete="CASCADE"), index=True)
    kind: Mapped[HallCodeKind] = mapped_column(str_enum(HallCodeKind), default=HallCodeKind.PRINTED)
    key_id: Mapped[str] = mapped_column(String(8))
    label: Mapped[str | None] = mapped_column(String(64))  # where it is posted
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    created_at: Mapped[created_at]
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class HallDisplay(Base):
    """A hall screen's own credential (the entrance TV), so no clerk stays logged in on it.

    The screen presents `Authorization: Display <token>`; only the token's SHA-256 is kept
    (the token is 256 random bits, so no salt or slow hash is needed). Revoking the row ends it.
    """

    __tablename__ = "hall_displays"

    id: Mapped[intpk]
    hall_id: Mapped[int] = mapped_column(ForeignKey("halls.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))  # where it hangs, e.g. "一楼入口屏"
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    created_at: Mapped[created_at]
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class HallCodeWxacode(Base):
    """A printed code's mini-program code as WeChat drew it, kept so it is asked for once.

    The token is stored beside the image: were the key behind the code's key id ever replaced,
    the token would change and the stored image would be redrawn rather than served stale.
    """

    __tablename__ = "hall_code_wxacodes"

    hall_code_id: Mapped[int] = mapped_column(
        ForeignKey("hall_codes.id", ondelete="CASCADE"), primary_key=True
    )
    page: Mapped[str] = mapped_column(String(128), primary_key=True)
    width: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str64]
    png: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[created_at]


class PersonalCodeUse(Base):
    """A personal-code nonce already used by a terminal action: a replay hits the unique key."""

    __tablename__ = "personal_code_uses"

    nonce: Mapped[str64] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(String(16), primary_key=True)  # take, checkin, ...
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    used_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class GreenChannelFlag(Base):
    """A citizen entitled to the green channel for disability, as checked by a clerk (残疾证).

    Age comes from `User.birth_date`; disability is not in the real-name data, so a clerk
    records it once after seeing the certificate.
    """

    __tablename__ = "green_channel_flags"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    reason: Mapped[str] = mapped_column(String(16), default="disability")
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created_at]


class CityCodeUse(Base):
    """A 红棉码 already used by a terminal action: the city's serial is single use per action."""

    __tablename__ = "city_code_uses"

    serial: Mapped[str64] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(String(16), primary_key=True)  # take, identify, ...
    # The citizen's own account, when they have one; a walk-in is known only to the city.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    used_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
