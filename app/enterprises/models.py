"""Enterprises and who may act for them.

`RegistryEnterprise` mirrors the market-regulation registry (市场监管 登记信息): here an embedded
demo copy loaded by `registry.load_registry`; a real deployment fills the same table from the
registry's data feed. An `EnterpriseBinding` says that a mini-program user acts for an
enterprise, as its legal representative or as an agent (经办人) the legal representative
authorised through an `AgentAuthorisation`.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, created_at, intpk, str64, str128, str_enum
from app.identity.models import User


class RegistryStatus(enum.StrEnum):
    """登记状态 as the registry writes it."""

    EXISTING = "存续"
    OPERATING = "在业"
    SUSPENDED = "停业"
    MOVED_OUT = "迁出"
    REVOKED = "吊销"
    CANCELLED = "注销"

    @property
    def is_active(self) -> bool:
        """Whether the enterprise still legally exists and operates (may be bound, may apply)."""
        return self in (RegistryStatus.EXISTING, RegistryStatus.OPERATING)


class RegistryEnterprise(Base):
    """One enterprise as the registry knows it; the id is what the API and bindings use.

    The legal representative's name is public registry information (it is printed on the
    business licence), so it is kept in clear for matching, and masked in every response. Where
    the feed also carries the representative's ID number, only its blind index is kept
    (`legal_rep_id_index`, same key and context as `users.id_number_index`), and binding then
    requires the ID number to match as well as the name: names alone are not unique.
    """

    __tablename__ = "registry_enterprises"

    id: Mapped[intpk]
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str128]
    legal_rep_name: Mapped[str64]
    legal_rep_id_index: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[RegistryStatus] = mapped_column(str_enum(RegistryStatus, 8))
    entity_type: Mapped[str | None] = mapped_column(String(32))  # 有限责任公司, 个体工商户...
    industry_code: Mapped[str | None] = mapped_column(String(8))  # GB/T 4754 门类, e.g. "H"
    industry: Mapped[str | None] = mapped_column(String(64))
    # Whole yuan: integer arithmetic on both backends (SQLite has no true DECIMAL).
    registered_capital_yuan: Mapped[int | None]
    registered_town: Mapped[str | None] = mapped_column(String(32), index=True)
    established_on: Mapped[dt.date | None] = mapped_column(Date)
    # When this row was last written from the registry feed.
    synced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    @property
    def is_active(self) -> bool:
        return RegistryStatus(self.status).is_active


class BindingRole(enum.StrEnum):
    LEGAL_REPRESENTATIVE = "legal_representative"  # 法定代表人
    AGENT = "agent"  # 经办人, authorised by the legal representative


class BindingStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class EnterpriseBinding(Base):
    """A user acting for an enterprise. Revoked bindings stay, as the record of who could act.

    At most one ACTIVE binding per (user, enterprise), and one active legal representative per
    enterprise: partial unique indexes, which SQLite (3.8+) and PostgreSQL both enforce, so the
    database is the last guard against two concurrent requests while revoked rows may repeat.
    """

    __tablename__ = "enterprise_bindings"
    __table_args__ = (
        Index(
            "uq_enterprise_bindings_active_user",
            "user_id",
            "enterprise_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index(
            "uq_enterprise_bindings_active_legal_rep",
            "enterprise_id",
            unique=True,
            sqlite_where=text("status = 'active' AND role = 'legal_representative'"),
            postgresql_where=text("status = 'active' AND role = 'legal_representative'"),
        ),
    )

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("registry_enterprises.id"), index=True)
    role: Mapped[BindingRole] = mapped_column(str_enum(BindingRole, 32))
    # For agents: the legal representative's binding that authorised them. Revoking it
    # revokes them.
    authorised_by_binding_id: Mapped[int | None] = mapped_column(
        ForeignKey("enterprise_bindings.id"), index=True
    )
    status: Mapped[BindingStatus] = mapped_column(str_enum(BindingStatus, 16))
    created_at: Mapped[created_at]
    revoked_at: Mapped[dt.datetime | None]
    revoked_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # self | legal_representative | cascade | superseded | legal_rep_changed
    revoked_reason: Mapped[str | None] = mapped_column(String(32))

    enterprise: Mapped[RegistryEnterprise] = relationship()
    user: Mapped[User] = relationship(foreign_keys=[user_id])
    authorised_by: Mapped[EnterpriseBinding | None] = relationship(
        remote_side="EnterpriseBinding.id", foreign_keys=[authorised_by_binding_id]
    )

    @property
    def is_active(self) -> bool:
        return self.status == BindingStatus.ACTIVE


class AuthorisationStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CANCELLED = "cancelled"  # by the legal representative, with their binding, or replaced
    EXPIRED = "expired"  # found pending after its expiry


class AgentAuthorisation(Base):
    """The legal representative names an agent (name + ID number); that person accepts.

    Addressed to an identity, not a bearer code: nothing can be forwarded or intercepted and
    redeemed by someone else, and the person need not have an account yet. The ID number is
    kept only as its blind index (to find the authorisations addressed to a verified user) and
    the name sealed (to show it masked); it expires, is used once (a guarded status update), and
    grants only the agent role for this one enterprise.
    """

    __tablename__ = "agent_authorisations"
    __table_args__ = (
        # One open authorisation per person and enterprise; answered ones may repeat.
        Index(
            "uq_agent_authorisations_pending",
            "enterprise_id",
            "agent_id_number_index",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        UniqueConstraint("agent_binding_id"),
    )

    id: Mapped[intpk]
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("registry_enterprises.id"), index=True)
    legal_rep_binding_id: Mapped[int] = mapped_column(
        ForeignKey("enterprise_bindings.id"), index=True
    )
    agent_name_sealed: Mapped[str] = mapped_column(Text)
    agent_id_number_index: Mapped[str64] = mapped_column(index=True)
    # Shown to the legal representative in their list; only first and last four digits.
    agent_id_number_masked: Mapped[str] = mapped_column(String(32))
    status: Mapped[AuthorisationStatus] = mapped_column(str_enum(AuthorisationStatus, 16))
    created_at: Mapped[created_at]
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    responded_at: Mapped[dt.datetime | None]
    agent_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    agent_binding_id: Mapped[int | None] = mapped_column(ForeignKey("enterprise_bindings.id"))

    enterprise: Mapped[RegistryEnterprise] = relationship()
    legal_rep_binding: Mapped[EnterpriseBinding] = relationship(foreign_keys=[legal_rep_binding_id])

    def is_open(self, now: dt.datetime) -> bool:
        """Pending and not yet expired."""
        return self.status == AuthorisationStatus.PENDING and self.expires_at > now
