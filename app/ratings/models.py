"""Ratings (好差评) of finished tickets and decided applications, and the follow-ups bad ratings
open: a hall manager's for a ticket, the department's for an application."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, created_at, intpk, str_enum


class RatingLevel(enum.StrEnum):
    """The national five levels of 好差评, best first."""

    VERY_SATISFIED = "very_satisfied"
    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    DISSATISFIED = "dissatisfied"
    VERY_DISSATISFIED = "very_dissatisfied"

    @property
    def label(self) -> str:
        return LEVEL_LABELS[self]

    @property
    def score(self) -> int:
        return LEVEL_SCORES[self]

    @property
    def is_bad(self) -> bool:
        """差评: 不满意 or worse, which opens a follow-up."""
        return self.score <= 2


LEVEL_LABELS = {
    RatingLevel.VERY_SATISFIED: "非常满意",
    RatingLevel.SATISFIED: "满意",
    RatingLevel.BASICALLY_SATISFIED: "基本满意",
    RatingLevel.DISSATISFIED: "不满意",
    RatingLevel.VERY_DISSATISFIED: "非常不满意",
}
LEVEL_SCORES = {level: 5 - i for i, level in enumerate(RatingLevel)}


class Rating(Base):
    """One citizen's rating of one finished ticket or one decided application, each rated
    once (both ids unique, exactly one of them set)."""

    __tablename__ = "ratings"
    __table_args__ = (
        Index("ix_ratings_hall_id_rated_at", "hall_id", "rated_at"),
        Index("ix_ratings_department_id_rated_at", "department_id", "rated_at"),
        CheckConstraint("(ticket_id IS NULL) <> (application_id IS NULL)", name="one_subject"),
    )

    id: Mapped[intpk]
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), unique=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # Copied from the ticket (hall, category, window) or the application (department), so
    # reports need no join.
    hall_id: Mapped[int | None] = mapped_column(ForeignKey("halls.id"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("service_categories.id"))
    window_id: Mapped[int | None] = mapped_column(ForeignKey("windows.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    level: Mapped[RatingLevel] = mapped_column(str_enum(RatingLevel, 24))
    score: Mapped[int] = mapped_column(Integer)  # 5 (非常满意) .. 1 (非常不满意)
    # The citizen's words exactly as given (may name people): shown to managers, never logged.
    comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[dt.datetime]

    follow_up: Mapped[RatingFollowUp | None] = relationship(back_populates="rating", uselist=False)


class FollowUpStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class RatingFollowUp(Base):
    """The rectification (整改) of a bad rating, due by a deadline: by the hall's manager for a
    ticket, by the department's reviewers for an application."""

    __tablename__ = "rating_follow_ups"
    __table_args__ = (
        Index("ix_rating_follow_ups_hall_id_status", "hall_id", "status"),
        Index("ix_rating_follow_ups_department_id_status", "department_id", "status"),
    )

    id: Mapped[intpk]
    rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id"), unique=True)
    hall_id: Mapped[int | None] = mapped_column(ForeignKey("halls.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    status: Mapped[FollowUpStatus] = mapped_column(
        str_enum(FollowUpStatus, 16), default=FollowUpStatus.OPEN
    )
    due_at: Mapped[dt.datetime]
    rectification: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[dt.datetime | None]
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    created_at: Mapped[created_at]

    rating: Mapped[Rating] = relationship(back_populates="follow_up")
