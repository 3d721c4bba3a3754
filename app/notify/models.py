"""The notification outbox and the users' subscribe-message authorisations.

The outbox is the source of truth for every WeChat subscribe message this backend sends: a
domain writes a row in its own transaction, a job delivers it later. Queue messages (Dramatiq)
only say "deliver row N"; losing one never loses a notification.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, created_at, intpk, str64, str128, str_enum


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its next_attempt_at
    SENDING = "sending"  # claimed by a worker until locked_until
    SENT = "sent"  # WeChat accepted it
    FAILED = "failed"  # given up: a permanent error or too many attempts
    SKIPPED = "skipped"  # not sent on purpose: no authorisation from the user

    @property
    def is_final(self) -> bool:
        return self in (OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.SKIPPED)


class SubscriptionResult(enum.StrEnum):
    """What `wx.requestSubscribeMessage` answers per template id."""

    ACCEPT = "accept"
    REJECT = "reject"
    BAN = "ban"  # the user turned the template (or all messages) off in WeChat's settings
    FILTER = "filter"  # WeChat filtered the template out (title clash); nothing was asked


class NotificationOutbox(Base):
    """One subscribe message to one user, from enqueue to its final status."""

    __tablename__ = "notification_outbox"
    __table_args__ = (
        # The claim query: due rows by time.
        Index("ix_notification_outbox_status_due", "status", "next_attempt_at"),
        Index("ix_notification_outbox_user_id_id", "user_id", "id"),
        Index("ix_notification_outbox_source", "source_type", "source_id"),
    )

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    template_key: Mapped[str64]
    template_id: Mapped[str128]
    # WeChat field values ({"character_string1": "A012", ...}). A ticket number or a hall
    # name may appear here; ID numbers and phone numbers never do (checked at enqueue).
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    page: Mapped[str | None] = mapped_column(String(255))
    # Same event, same key ("ticket:123:called"): enqueued once however often a caller retries.
    dedupe_key: Mapped[str] = mapped_column(String(191), unique=True)
    # Which domain record the notification is about, so that domain can find it again.
    source_type: Mapped[str | None] = mapped_column(String(32))
    source_id: Mapped[int | None] = mapped_column(BigInteger)

    status: Mapped[OutboxStatus] = mapped_column(
        str_enum(OutboxStatus), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped by every claim. The mapper checks it on every ORM update of the row, so a worker
    # whose lease ran out and whose row was claimed again cannot overwrite the new claim's
    # outcome (StaleDataError instead).
    claim_token: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Lease of the worker that claimed the row; past it another worker may claim it again.
    locked_until: Mapped[dt.datetime | None]
    # True while this row holds one of the user's one-time grants (taken before the send,
    # given back if nothing was delivered), so a retry after a crash does not take another.
    grant_reserved: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_attempt_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    created_at: Mapped[created_at]

    # The application sets claim_token (in the claim UPDATE); the ORM only checks it.
    __mapper_args__ = {"version_id_col": claim_token, "version_id_generator": False}  # noqa: RUF012

    def mark_sent(self, *, now: dt.datetime) -> None:
        """WeChat accepted the message."""
        self.status = OutboxStatus.SENT
        self.sent_at = now
        self.locked_until = None
        self.last_error_code = None

    def finish(self, status: OutboxStatus, code: str) -> None:
        """End without sending (skipped) or give up (failed), keeping the reason."""
        assert status in (OutboxStatus.SKIPPED, OutboxStatus.FAILED)
        self.status = status
        self.last_error_code = code
        self.locked_until = None

    def reschedule(self, *, at: dt.datetime, code: str | None, count_attempt: bool = True) -> None:
        """Back to pending until `at`; an uncounted attempt (rate-limited here) is given back."""
        self.status = OutboxStatus.PENDING
        self.next_attempt_at = at
        self.locked_until = None
        if code is not None:
            self.last_error_code = code
        if not count_attempt:
            self.attempts -= 1


class SubscriptionGrant(Base):
    """What one user has authorised for one template, as the mini-program reported it.

    WeChat counts one-time authorisations itself and answers 43101 when none is left; this
    local count lets the backend skip a send it knows would be refused and show the user what
    is on. Long-term templates (public services) need no per-message grant.
    """

    __tablename__ = "subscription_grants"
    __table_args__ = (UniqueConstraint("user_id", "template_id"),)

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    template_id: Mapped[str128]
    one_time_remaining: Mapped[int] = mapped_column(Integer, default=0)
    long_term: Mapped[bool] = mapped_column(Boolean, default=False)
    last_result: Mapped[SubscriptionResult | None] = mapped_column(str_enum(SubscriptionResult))
    updated_at: Mapped[dt.datetime | None]
    created_at: Mapped[created_at]

    @property
    def usable(self) -> bool:
        return self.long_term or self.one_time_remaining > 0
