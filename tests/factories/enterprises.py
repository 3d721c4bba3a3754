"""Factories for registry enterprises and enterprise bindings."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.db import utcnow
from app.enterprises.models import (
    BindingRole,
    BindingStatus,
    EnterpriseBinding,
    RegistryEnterprise,
    RegistryStatus,
)
from app.enterprises.registry import PANYU_REGION, make_uscc
from app.identity.models import User
from app.identity.realname import ID_NUMBER_CONTEXT
from app.security.crypto import FieldCipher

_serial = itertools.count(1)


def uscc_for(serial: int, *, entity: str = "91") -> str:
    """A valid USCC (both check characters right) of a Panyu enterprise, one per serial."""
    return make_uscc(entity, PANYU_REGION, f"{70_000_000 + serial:08d}")


@pytest.fixture
def valid_uscc() -> Callable[[], str]:
    """Make a fresh valid USCC on each call."""
    return lambda: uscc_for(next(_serial))


@pytest.fixture
def create_registry_enterprise(
    session: Session, field_cipher: FieldCipher
) -> Callable[..., RegistryEnterprise]:
    """Insert a registry row; legal representative 张三 and status 存续 unless given.
    `legal_rep_id_number=...` stores the legal representative's ID number as the registry does
    (a keyed hash); without it the row has none, like an incomplete feed."""

    def create(*, legal_rep_id_number: str | None = None, **fields: Any) -> RegistryEnterprise:
        if legal_rep_id_number is not None:
            fields["legal_rep_id_index"] = field_cipher.blind_index(
                legal_rep_id_number, context=ID_NUMBER_CONTEXT
            )
        n = next(_serial)
        fields.setdefault("uscc", uscc_for(n))
        fields.setdefault("name", f"广州市番禺区测试{n}贸易有限公司")
        fields.setdefault("legal_rep_name", "张三")
        fields.setdefault("status", RegistryStatus.EXISTING)
        fields.setdefault("registered_town", "市桥街")
        fields.setdefault("established_on", dt.date(2015, 6, 1))
        fields.setdefault("synced_at", utcnow())
        enterprise = RegistryEnterprise(**fields)
        session.add(enterprise)
        session.flush()
        return enterprise

    return create


@pytest.fixture
def bind_enterprise(session: Session) -> Callable[..., EnterpriseBinding]:
    """Insert an active binding directly (no registry check): `bind_enterprise(user, ent)`."""

    def bind(
        user: User,
        enterprise: RegistryEnterprise,
        role: BindingRole = BindingRole.LEGAL_REPRESENTATIVE,
        authorised_by: EnterpriseBinding | None = None,
    ) -> EnterpriseBinding:
        binding = EnterpriseBinding(
            user_id=user.id,
            enterprise_id=enterprise.id,
            role=role,
            status=BindingStatus.ACTIVE,
            authorised_by_binding_id=authorised_by.id if authorised_by else None,
        )
        session.add(binding)
        session.flush()
        return binding

    return bind
