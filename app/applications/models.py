"""Applications (办件) and their recorded transitions."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, created_at, intpk, str64


class ApplicationStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    UNDER_REVIEW = "under_review"
    SUPPLEMENT_REQUESTED = "supplement_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    TERMINATED = "terminated"  # ended by itself: 容缺 materials not supplied in time


OPEN_FOR_REVIEW = (
    ApplicationStatus.ACCEPTED,
    ApplicationStatus.UNDER_REVIEW,
    ApplicationStatus.SUPPLEMENT_REQUESTED,
)


class Application(Base):
    """One applicant's request for a matter, under the matter version and workflow version it
    was filed under."""

    __tablename__ = "applications"
    __table_args__ = (Index("ix_applications_queue", "department_id", "status", "statutory_due"),)

    id: Mapped[intpk]
    number: Mapped[str] = mapped_column(String(24), unique=True)  # 办件编号, shown to people
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id"))
    matter_code: Mapped[str64]
    matter_version: Mapped[int] = mapped_column(Integer)
    workflow: Mapped[str] = mapped_column(String(32))
    workflow_version: Mapped[int] = mapped_column(Integer)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    applicant_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # Enterprise matters: the bound enterprise, and whether its legal representative or an
    # authorised agent filed it (checked again at every step the applicant takes).
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("registry_enterprises.id"))
    acting_as: Mapped[str] = mapped_column(String(24))  # citizen | legal_representative | agent
    form: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(24))
    # The rules' decision: each rule's outcome with the facts and parameters it saw.
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Both limits in working days from submission, the clock paused while waiting for 补正;
    # None while paused.
    statutory_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    promised_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    assignee_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    # The applicant's signature: the application form they signed (and, for 告知承诺 matters,
    # the commitment letter), each sealed by the department; and the fingerprint of the form
    # they signed, so a form changed after signing must be signed again.
    form_document_id: Mapped[int | None] = mapped_column(ForeignKey("issued_documents.id"))
    commitment_document_id: Mapped[int | None] = mapped_column(ForeignKey("issued_documents.id"))
    signed_form_sha256: Mapped[str | None] = mapped_column(String(64))
    signed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # 容缺受理: accepted with non-key materials missing, promised by this moment; the case ends
    # by itself when it passes. Cleared when the materials are in.
    supply_due: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    supply_reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    idempotency_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[created_at]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ApplicationEvent(Base):
    """One transition: who took which action, from which state to which, when, and why."""

    __tablename__ = "application_events"

    id: Mapped[intpk]
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    actor_kind: Mapped[str] = mapped_column(String(16))  # applicant | reviewer | system
    actor_id: Mapped[int | None]
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class InspectionStatus(enum.StrEnum):
    OPEN = "open"
    RECTIFYING = "rectifying"  # the holder must put things right by `rectify_by`
    CONFIRMED = "confirmed"
    REVOKED = "revoked"  # the commitment was false: licence revoked, holder excluded


class Inspection(Base):
    """The post-approval check (核查) of a permit granted on the applicant's commitment."""

    __tablename__ = "inspections"
    __table_args__ = (Index("ix_inspections_queue", "department_id", "status", "due_at"),)

    id: Mapped[intpk]
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"), unique=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    rectify_by: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Set by the periodic sweep when the check (or the rectification) is past its day
    # undecided; cleared when a rectification sets a new day.
    overdue: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    note: Mapped[str | None] = mapped_column(Text)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[created_at]


class CommitmentBreach(Base):
    """A false commitment found by an inspection: the holder may not be approved on a
    commitment again until `excluded_until`."""

    __tablename__ = "commitment_breaches"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    enterprise_id: Mapped[int | None] = mapped_column(
        ForeignKey("registry_enterprises.id"), index=True
    )
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    excluded_until: Mapped[dt.datetime] = mapped_column(UTCDateTime())
