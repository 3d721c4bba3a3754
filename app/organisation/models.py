"""Departments and service halls: what staff roles are scoped to."""

from __future__ import annotations

import enum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, created_at, intpk, str32, str128, str_enum


class HallKind(enum.StrEnum):
    DISTRICT = "district"  # 区政务服务中心
    SUB_CENTRE = "sub_centre"  # 分中心
    TOWN = "town"  # 镇街便民服务中心


class Department(Base):
    """A government department (e.g. 区气象局) that reviews matters and owns seals."""

    __tablename__ = "departments"

    id: Mapped[intpk]
    code: Mapped[str32] = mapped_column(unique=True)
    name: Mapped[str128] = mapped_column(unique=True)
    created_at: Mapped[created_at]


class Hall(Base):
    """A service hall (政务服务中心 / 便民服务中心)."""

    __tablename__ = "halls"

    id: Mapped[intpk]
    code: Mapped[str32] = mapped_column(unique=True)
    name: Mapped[str128] = mapped_column(unique=True)
    kind: Mapped[HallKind] = mapped_column(str_enum(HallKind, 16))
    town: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[created_at]
