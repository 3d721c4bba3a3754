"""Enterprise profiles, policies with versioned criteria, matches, the feed and the push outbox.

`EnterpriseProfile` is a 1:1 extension of the registry row (`registry_enterprises`): what
matching needs beyond the registry (full industry code, employees, revenue, tags), the size
class computed from them, and the history of every change. Policies keep each edit of their
criteria as a new `PolicyCriteria` version; a match remembers the version it was made with.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, BigIntPK, UTCDateTime, created_at, intpk, str64, str_enum


class EnterpriseProfile(Base):
    """What policy matching knows of one registry enterprise. NULL means "not known"."""

    __tablename__ = "enterprise_profiles"

    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("registry_enterprises.id", ondelete="CASCADE"), primary_key=True
    )
    # GB/T 4754-2017: section letter + class digits, e.g. "H6210"; a prefix selects a level.
    industry_code: Mapped[str | None] = mapped_column(String(5), index=True)
    town: Mapped[str | None] = mapped_column(String(16))
    established_on: Mapped[dt.date | None] = mapped_column(Date)
    employees: Mapped[int | None] = mapped_column(Integer)
    revenue_yuan: Mapped[int | None] = mapped_column(BigInteger)
    # Computed from industry, employees and revenue (reference.size_class), never typed in.
    size_class: Mapped[str | None] = mapped_column(String(8))
    # One bit per reference.TAGS entry; NULL = the enterprise's qualifications are not known.
    tag_bits: Mapped[int | None] = mapped_column(Integer)
    # Facts the enterprise declared itself and no authority has confirmed (待核实): tags as
    # bits, other fields as reference.FACT_BITS. Benefits that pay money and criteria that
    # ask for authoritative facts read them as unknown.
    # Server defaults too: bulk loads (COPY) that name only the profile's facts get "verified".
    unverified_tag_bits: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    unverified_fields: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Per fact ("employees", "tag:高新技术企业"): {"source": registry | import | self | officer,
    # "at": ISO time it was last set or confirmed}.
    fact_sources: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[created_at]


class ProfileChange(Base):
    """One change of a profile: who (import, the enterprise's user, staff), when, old -> new."""

    __tablename__ = "enterprise_profile_changes"
    __table_args__ = (Index("ix_enterprise_profile_changes_enterprise", "enterprise_id", "id"),)

    id: Mapped[intpk]
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("registry_enterprises.id", ondelete="CASCADE")
    )
    source: Mapped[str] = mapped_column(String(16))  # import | self | staff
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # {"employees": [12, 15], ...}: business figures of a company, no personal data.
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class PolicyStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class BenefitKind(enum.StrEnum):
    SUBSIDY = "subsidy"  # 资金补贴
    TAX = "tax"  # 税费减免
    LOAN = "loan"  # 贷款贴息
    INSURANCE = "insurance"  # 保险保费支持
    AWARD = "award"  # 认定奖励
    SERVICE = "service"  # 服务支持

    @property
    def label(self) -> str:
        return {
            "subsidy": "资金补贴",
            "tax": "税费减免",
            "loan": "贷款贴息",
            "insurance": "保险保费支持",
            "award": "认定奖励",
            "service": "服务支持",
        }[self.value]


class Delivery(enum.StrEnum):
    AUTOMATIC = "automatic"  # 免申即享: granted without application
    APPLICATION = "application"  # 申请兑现: applied for through a service item

    @property
    def label(self) -> str:
        return "免申即享" if self is Delivery.AUTOMATIC else "申请兑现"


class Policy(Base):
    """A support policy (惠企政策) of one department."""

    __tablename__ = "policies"
    __table_args__ = (Index("ix_policies_status_published_at", "status", "published_at"),)

    id: Mapped[intpk]
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    title: Mapped[str] = mapped_column(String(128))
    doc_number: Mapped[str] = mapped_column(String(64))  # 文号, e.g. 番商务〔2024〕12号
    summary: Mapped[str] = mapped_column(Text)
    source_url: Mapped[str | None] = mapped_column(String(512))
    benefit_kind: Mapped[BenefitKind] = mapped_column(str_enum(BenefitKind))
    benefit_amount_yuan: Mapped[int | None] = mapped_column(BigInteger)
    delivery: Mapped[Delivery] = mapped_column(str_enum(Delivery))
    item_code: Mapped[str | None] = mapped_column(String(64))  # 申请兑现: the service item
    status: Mapped[PolicyStatus] = mapped_column(str_enum(PolicyStatus), default=PolicyStatus.DRAFT)
    # Shanghai calendar dates; the policy is open through expires_on inclusive.
    expires_on: Mapped[dt.date | None] = mapped_column(Date)
    criteria_version: Mapped[int] = mapped_column(Integer, default=0)
    published_at: Mapped[dt.datetime | None]
    withdrawn_at: Mapped[dt.datetime | None]
    withdraw_reason: Mapped[str | None] = mapped_column(String(255))
    # Lower-cased title + 文号 + summary: the keyword search runs over it.
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    created_at: Mapped[created_at]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    versions: Mapped[list[PolicyCriteria]] = relationship(
        back_populates="policy", order_by="PolicyCriteria.version"
    )


class PolicyCriteria(Base):
    """One version of a policy's eligibility criteria (a list of labelled expression trees)."""

    __tablename__ = "policy_criteria"
    __table_args__ = (UniqueConstraint("policy_id", "version"),)

    id: Mapped[intpk]
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    criteria: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    policy: Mapped[Policy] = relationship(back_populates="versions")


class MatchStatus(enum.StrEnum):
    ELIGIBLE = "eligible"  # every criterion passes
    MAYBE = "maybe"  # none fails, some unknown: "may qualify, apply" (快申快享)


class PolicyMatch(Base):
    """An enterprise that matches a policy, with the per-criterion results (P/F/U string)."""

    __tablename__ = "policy_matches"
    __table_args__ = (Index("ix_policy_matches_enterprise", "enterprise_id", "policy_id"),)

    # No foreign keys on purpose: matches are derived data, rebuilt by `match_policy`, and a
    # per-row RI check would double the cost of storing 100k+ matches at publish time.
    # Enterprises are never deleted (the registry marks them cancelled); policies neither.
    policy_id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    criteria_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[MatchStatus] = mapped_column(str_enum(MatchStatus, 8))
    # One character per criterion, in order: P(ass), F(ail), U(nknown).
    results: Mapped[str] = mapped_column(String(64))
    matched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Set by the application flow (a later capability) when the enterprise applied.
    applied_at: Mapped[dt.datetime | None]


class FeedMark(Base):
    """What one user of an enterprise did with a matched policy in the feed."""

    __tablename__ = "policy_feed_marks"
    __table_args__ = (UniqueConstraint("user_id", "enterprise_id", "policy_id"),)

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("registry_enterprises.id", ondelete="CASCADE")
    )
    policy_id: Mapped[int] = mapped_column(
        ForeignKey("policies.id", ondelete="CASCADE"), index=True
    )
    read_at: Mapped[dt.datetime | None]
    favourite: Mapped[bool] = mapped_column(Boolean, default=False)


class PushStatus(enum.StrEnum):
    WAITING = "waiting"  # due at due_at (quiet hours, frequency caps, backoff)
    CLAIMED = "claimed"  # leased by a worker, its notification row created and held
    IN_FLIGHT = "in_flight"  # the WeChat call is about to be / being made (committed before it)
    SENT = "sent"
    SKIPPED = "skipped"  # never to be sent: opted out, no authorisation, not a recipient
    FAILED = "failed"  # a permanent error or too many attempts
    IN_DOUBT = "in_doubt"  # the worker died during the call: not sent again (at most once)
    CANCELLED = "cancelled"  # the policy was withdrawn or expired before the send


class PolicyPush(Base):
    """One push of one policy to one recipient: the unit of exactly-once."""

    __tablename__ = "policy_pushes"
    __table_args__ = (
        UniqueConstraint("policy_id", "user_id"),
        Index("ix_policy_pushes_status_due", "status", "due_at"),
        Index("ix_policy_pushes_enterprise_released", "enterprise_id", "released_at"),
    )

    id: Mapped[intpk]
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"))
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("registry_enterprises.id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[PushStatus] = mapped_column(str_enum(PushStatus), default=PushStatus.WAITING)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped by every claim; the in-flight marker and the outcome are guarded by it.
    claim_token: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None]
    # The notification row of the current attempt (delivered by app.notify.sender).
    notification_id: Mapped[int | None] = mapped_column(
        ForeignKey("notification_outbox.id", ondelete="SET NULL")
    )
    reason: Mapped[str | None] = mapped_column(String(64))
    # First release counts against the enterprise's frequency caps.
    released_at: Mapped[dt.datetime | None]
    in_flight_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class PushOptOut(Base):
    """A recipient who asked not to receive policy pushes for an enterprise."""

    __tablename__ = "policy_push_optouts"
    __table_args__ = (UniqueConstraint("user_id", "enterprise_id"),)

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("registry_enterprises.id", ondelete="CASCADE")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ReceivingAccount(Base):
    """The bank account an enterprise confirmed for 免申即享 payments (sealed, shown masked)."""

    __tablename__ = "policy_receiving_accounts"

    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("registry_enterprises.id", ondelete="CASCADE"), primary_key=True
    )
    bank_name: Mapped[str64]
    account_name: Mapped[str] = mapped_column(String(128))
    account_number_sealed: Mapped[str] = mapped_column(Text)
    account_number_masked: Mapped[str] = mapped_column(String(40))
    confirmed_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    confirmed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # How the holder was checked: exact_name (embedded rule) or bank_service.
    verified_by: Mapped[str] = mapped_column(String(16), default="exact_name")
    # Set when the enterprise's legal representative changed: no money goes to the account
    # until the (new) legal representative confirms it again.
    frozen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    frozen_reason: Mapped[str | None] = mapped_column(String(32))

    @property
    def is_frozen(self) -> bool:
        return self.frozen_at is not None
