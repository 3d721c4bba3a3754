"""Who uses 禺好办: mini-program users (citizens), staff accounts, and their login sessions."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, created_at, intpk, str64, str128, str_enum


class User(Base):
    """A mini-program user, identified by WeChat openid.

    Personal data is sealed with `FieldCipher` (columns ending `_sealed`); `*_index` columns are
    keyed hashes used to enforce uniqueness and to look a value up without decrypting.
    """

    __tablename__ = "users"

    id: Mapped[intpk]
    openid: Mapped[str64] = mapped_column(unique=True)
    unionid: Mapped[str | None] = mapped_column(String(64), index=True)
    session_key_sealed: Mapped[str | None] = mapped_column(Text)

    phone_sealed: Mapped[str | None] = mapped_column(Text)
    phone_index: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_bound_at: Mapped[dt.datetime | None]

    real_name_sealed: Mapped[str | None] = mapped_column(Text)
    id_number_sealed: Mapped[str | None] = mapped_column(Text)
    id_number_index: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Kept in clear for the elderly green channel and age rules; not enough to identify anyone.
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    realname_verified_at: Mapped[dt.datetime | None]
    realname_method: Mapped[str | None] = mapped_column(String(32))
    # The last passed face verification (liveness + ID photo) of this account's person.
    face_verified_at: Mapped[dt.datetime | None]

    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[created_at]
    last_login_at: Mapped[dt.datetime | None]

    @property
    def is_realname_verified(self) -> bool:
        return self.realname_verified_at is not None


class StaffRole(enum.StrEnum):
    WINDOW_CLERK = "window_clerk"  # scoped to a hall
    HALL_MANAGER = "hall_manager"  # scoped to a hall
    REVIEWER = "reviewer"  # scoped to a department
    POLICY_OFFICER = "policy_officer"  # scoped to a department
    ADMIN = "admin"  # unscoped

    @property
    def scope_kind(self) -> str | None:
        """'hall', 'department' or None (unscoped)."""
        return {
            StaffRole.WINDOW_CLERK: "hall",
            StaffRole.HALL_MANAGER: "hall",
            StaffRole.REVIEWER: "department",
            StaffRole.POLICY_OFFICER: "department",
        }.get(self)


class StaffAccount(Base):
    __tablename__ = "staff_accounts"

    id: Mapped[intpk]
    username: Mapped[str64] = mapped_column(unique=True)
    display_name: Mapped[str128]
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None]
    password_changed_at: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]
    created_at: Mapped[created_at]
    # The mini-program account the staff member confirms console scan logins with (self-linked).
    wechat_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), unique=True
    )
    wechat_linked_at: Mapped[dt.datetime | None]

    grants: Mapped[list[StaffRoleGrant]] = relationship(
        back_populates="staff", cascade="all, delete-orphan", order_by="StaffRoleGrant.id"
    )


class StaffRoleGrant(Base):
    """One role of a staff member, with its scope (a hall or a department) where it has one."""

    __tablename__ = "staff_role_grants"
    __table_args__ = (UniqueConstraint("staff_id", "role", "hall_id", "department_id"),)

    id: Mapped[intpk]
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id", ondelete="CASCADE"))
    role: Mapped[StaffRole] = mapped_column(str_enum(StaffRole, 32))
    hall_id: Mapped[int | None] = mapped_column(ForeignKey("halls.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    created_at: Mapped[created_at]

    staff: Mapped[StaffAccount] = relationship(back_populates="grants")


class PrincipalKind(enum.StrEnum):
    USER = "user"
    STAFF = "staff"


class LoginFamily(Base):
    """One login and every refresh token rotated from it; revoking it ends them all."""

    __tablename__ = "login_families"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random hex
    principal_kind: Mapped[PrincipalKind] = mapped_column(str_enum(PrincipalKind, 8))
    principal_id: Mapped[int] = mapped_column(index=True)
    created_at: Mapped[created_at]
    revoked_at: Mapped[dt.datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(32))

    tokens: Mapped[list[RefreshToken]] = relationship(back_populates="family")


class RefreshToken(Base):
    """An opaque refresh token, stored as its SHA-256; used once, then replaced."""

    __tablename__ = "refresh_tokens"

    id: Mapped[intpk]
    family_id: Mapped[str] = mapped_column(
        ForeignKey("login_families.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str64] = mapped_column(unique=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[dt.datetime | None]

    family: Mapped[LoginFamily] = relationship(back_populates="tokens")


class ConsoleChallengePurpose(enum.StrEnum):
    LOGIN = "login"  # a console login page's QR: the linked staff member confirms, the page logs in
    LINK = "link"  # a logged-in staff member's QR: the scanning WeChat account becomes theirs


class ConsoleChallenge(Base):
    """A short-lived, single-use QR shown by the staff console and confirmed from the
    mini-program. Only the code's SHA-256 is kept; the browser that asked for it holds `id` in
    its session cookie, so a photo of the QR alone cannot log anyone in elsewhere."""

    __tablename__ = "console_challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random hex
    purpose: Mapped[ConsoleChallengePurpose] = mapped_column(str_enum(ConsoleChallengePurpose, 8))
    code_hash: Mapped[str64] = mapped_column(unique=True)
    # LINK: the account asking to be linked. LOGIN: the account that confirmed.
    staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_accounts.id", ondelete="CASCADE")
    )
    created_at: Mapped[created_at]
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[dt.datetime | None]
    consumed_at: Mapped[dt.datetime | None]
