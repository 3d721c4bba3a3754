"""Binding as legal representative: the registry's ID number decides, checked against the
verified identity of a person who passed a face verification moments ago."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry
from app.enterprises import errors, service
from app.enterprises.models import (
    BindingRole,
    BindingStatus,
    EnterpriseBinding,
    RegistryEnterprise,
    RegistryStatus,
)
from app.identity.models import User
from app.security.crypto import FieldCipher
from tests.factories.identity import id_number_for

MY_ENTERPRISES = "/api/v1/me/enterprises"
REPRESENTATIVE_ID = id_number_for(order=501)


def _bind(client: FlaskClient, headers: dict[str, str], uscc: str) -> Any:
    return client.post(
        MY_ENTERPRISES, json={"uscc": uscc, "role": "legal_representative"}, headers=headers
    )


def _binding_count(session: Session) -> int:
    session.rollback()  # what the app's teardown does: drop whatever the request did not commit
    return session.scalar(select(func.count()).select_from(EnterpriseBinding)) or 0


@pytest.fixture
def enterprise(
    session: Session, create_registry_enterprise: Callable[..., RegistryEnterprise]
) -> RegistryEnterprise:
    row = create_registry_enterprise(
        name="广州市番禺区鸿达珠宝首饰有限公司",
        legal_rep_name="梁志强",
        legal_rep_id_number=REPRESENTATIVE_ID,
    )
    session.commit()
    return row


@pytest.fixture
def representative(session: Session, create_verified_user: Callable[..., User]) -> User:
    user = create_verified_user(name="梁志强", id_number=REPRESENTATIVE_ID, level="face")
    session.commit()
    return user


def test_the_registered_legal_representative_binds_their_enterprise(
    client: FlaskClient,
    session: Session,
    citizen_headers: Callable[[User], dict[str, str]],
    enterprise: RegistryEnterprise,
    representative: User,
) -> None:
    response = _bind(client, citizen_headers(representative), enterprise.uscc.lower())

    assert response.status_code == 201
    body = response.get_json()
    assert body["role"] == "legal_representative"
    assert body["status"] == "active"
    assert body["enterprise"] == {
        "id": enterprise.id,
        "uscc": enterprise.uscc,
        "name": "广州市番禺区鸿达珠宝首饰有限公司",
        "status": "存续",
        "registered_town": "市桥街",
        "legal_rep_name": "*志强",
    }
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "enterprise.bound")).one()
    assert (entry.actor_kind, entry.actor_id) == ("user", representative.id)
    assert entry.details == {"enterprise_id": enterprise.id, "role": "legal_representative"}

    listed = client.get(MY_ENTERPRISES, headers=citizen_headers(representative))
    assert [b["enterprise"]["id"] for b in listed.get_json()["items"]] == [enterprise.id]
    detail = client.get(
        f"/api/v1/enterprises/{enterprise.id}", headers=citizen_headers(representative)
    )
    assert detail.status_code == 200
    assert detail.get_json()["enterprise"]["legal_rep_name"] == "*志强"
    assert detail.get_json()["binding"]["role"] == "legal_representative"


def test_someone_whose_id_number_differs_from_the_registry_is_refused_and_audited(
    client: FlaskClient,
    session: Session,
    citizen_headers: Callable[[User], dict[str, str]],
    create_verified_user: Callable[..., User],
    enterprise: RegistryEnterprise,
) -> None:
    stranger = create_verified_user(name="陈伟", id_number=id_number_for(order=502), level="face")
    session.commit()

    response = _bind(client, citizen_headers(stranger), enterprise.uscc)

    assert response.status_code == 403
    assert response.get_json()["code"] == "NOT_LEGAL_REPRESENTATIVE"
    assert _binding_count(session) == 0
    refused = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "enterprise.bind_refused")
    ).one()
    assert (refused.actor_id, refused.details) == (stranger.id, {"reason": "not_legal_rep"})


def test_a_user_without_real_name_verification_is_refused(
    client: FlaskClient,
    session: Session,
    citizen_headers: Callable[[User], dict[str, str]],
    create_user: Callable[..., User],
    enterprise: RegistryEnterprise,
) -> None:
    user = create_user()
    session.commit()

    response = _bind(client, citizen_headers(user), enterprise.uscc)

    assert response.status_code == 403
    assert response.get_json()["code"] == "REALNAME_REQUIRED"
    assert _binding_count(session) == 0


def test_a_uscc_with_a_wrong_check_digit_is_422(
    client: FlaskClient,
    citizen_headers: Callable[[User], dict[str, str]],
    enterprise: RegistryEnterprise,
    representative: User,
) -> None:
    last = enterprise.uscc[-1]
    tampered = enterprise.uscc[:-1] + ("1" if last != "1" else "2")

    response = _bind(client, citizen_headers(representative), tampered)

    assert response.status_code == 422
    assert response.get_json()["code"] == "USCC_INVALID"


@pytest.mark.parametrize("uscc", ["12345", "91440113MA5ZZZZZZI", "", "９１"])
def test_malformed_usccs_are_422(
    client: FlaskClient,
    citizen_headers: Callable[[User], dict[str, str]],
    representative: User,
    uscc: str,
) -> None:
    response = _bind(client, citizen_headers(representative), uscc)
    assert response.status_code == 422


def test_a_valid_uscc_missing_from_the_registry_is_404(
    client: FlaskClient,
    citizen_headers: Callable[[User], dict[str, str]],
    valid_uscc: Callable[[], str],
    representative: User,
) -> None:
    response = _bind(client, citizen_headers(representative), valid_uscc())

    assert response.status_code == 404
    assert response.get_json()["code"] == "ENTERPRISE_NOT_FOUND"


@pytest.mark.parametrize("status", [RegistryStatus.CANCELLED, RegistryStatus.REVOKED])
def test_a_closed_enterprise_cannot_be_bound(
    client: FlaskClient,
    session: Session,
    citizen_headers: Callable[[User], dict[str, str]],
    enterprise: RegistryEnterprise,
    representative: User,
    status: RegistryStatus,
) -> None:
    enterprise.status = status
    session.commit()

    response = _bind(client, citizen_headers(representative), enterprise.uscc)

    assert response.status_code == 409
    assert response.get_json()["code"] == "ENTERPRISE_NOT_ACTIVE"


def test_binding_the_same_enterprise_twice_is_409(
    client: FlaskClient,
    citizen_headers: Callable[[User], dict[str, str]],
    enterprise: RegistryEnterprise,
    representative: User,
) -> None:
    headers = citizen_headers(representative)
    assert _bind(client, headers, enterprise.uscc).status_code == 201

    again = _bind(client, headers, enterprise.uscc)

    assert again.status_code == 409
    assert again.get_json()["code"] == "ENTERPRISE_ALREADY_BOUND"


def test_only_the_legal_representative_role_can_be_claimed(
    client: FlaskClient,
    citizen_headers: Callable[[User], dict[str, str]],
    enterprise: RegistryEnterprise,
    representative: User,
) -> None:
    response = client.post(
        MY_ENTERPRISES,
        json={"uscc": enterprise.uscc, "role": "agent"},
        headers=citizen_headers(representative),
    )
    assert response.status_code == 422


def test_the_id_number_decides_whatever_dot_the_name_was_typed_with(
    session: Session,
    field_cipher: FieldCipher,
    create_registry_enterprise: Callable[..., RegistryEnterprise],
    create_verified_user: Callable[..., User],
) -> None:
    number = id_number_for(order=503)
    enterprise = create_registry_enterprise(
        legal_rep_name="阿依古丽•买买提", legal_rep_id_number=number
    )
    user = create_verified_user(name="阿依古丽·买买提", id_number=number, level="face")

    binding = service.bind_as_legal_representative(
        session, field_cipher, user, enterprise.uscc, now=enterprise.synced_at
    )

    assert binding.role == BindingRole.LEGAL_REPRESENTATIVE


def test_with_the_id_number_in_the_registry_a_namesake_is_refused(
    session: Session,
    field_cipher: FieldCipher,
    create_registry_enterprise: Callable[..., RegistryEnterprise],
    create_verified_user: Callable[..., User],
) -> None:
    real_number = id_number_for(order=504)
    enterprise = create_registry_enterprise(legal_rep_name="李伟", legal_rep_id_number=real_number)
    namesake = create_verified_user(name="李伟", id_number=id_number_for(order=505), level="face")
    real = create_verified_user(name="李伟", id_number=real_number, level="face")

    with pytest.raises(errors.NotLegalRepresentative):
        service.bind_as_legal_representative(
            session, field_cipher, namesake, enterprise.uscc, now=enterprise.synced_at
        )
    binding = service.bind_as_legal_representative(
        session, field_cipher, real, enterprise.uscc, now=enterprise.synced_at
    )
    assert binding.user_id == real.id


def test_a_namesake_cannot_push_out_the_bound_legal_representative(
    session: Session,
    field_cipher: FieldCipher,
    create_verified_user: Callable[..., User],
    enterprise: RegistryEnterprise,
    representative: User,
) -> None:
    now = enterprise.synced_at
    first = service.bind_as_legal_representative(
        session, field_cipher, representative, enterprise.uscc, now=now
    )
    namesake = create_verified_user(name="梁志强", id_number=id_number_for(order=506), level="face")

    with pytest.raises(errors.NotLegalRepresentative):
        service.bind_as_legal_representative(
            session, field_cipher, namesake, enterprise.uscc, now=now
        )
    assert first.status == BindingStatus.ACTIVE


def test_a_new_legal_representative_in_the_registry_replaces_the_old_one(
    session: Session,
    field_cipher: FieldCipher,
    create_verified_user: Callable[..., User],
    bind_enterprise: Callable[..., EnterpriseBinding],
    enterprise: RegistryEnterprise,
    representative: User,
) -> None:
    now = enterprise.synced_at
    old = service.bind_as_legal_representative(
        session, field_cipher, representative, enterprise.uscc, now=now
    )
    agent = create_verified_user(name="吴敏", id_number=id_number_for(order=507))
    agent_binding = bind_enterprise(agent, enterprise, BindingRole.AGENT, authorised_by=old)
    successor_id = id_number_for(order=508)
    successor = create_verified_user(name="麦嘉颖", id_number=successor_id, level="face")
    enterprise.legal_rep_name = "麦嘉颖"  # the registry feed reports the change
    enterprise.legal_rep_id_index = successor.id_number_index

    new = service.bind_as_legal_representative(
        session, field_cipher, successor, enterprise.uscc, now=now
    )

    session.refresh(old)
    session.refresh(agent_binding)
    assert new.is_active
    assert (old.status, old.revoked_reason) == (BindingStatus.REVOKED, "legal_rep_changed")
    assert (agent_binding.status, agent_binding.revoked_reason) == (
        BindingStatus.REVOKED,
        "cascade",
    )


def test_enterprise_details_are_refused_to_anyone_not_bound(
    client: FlaskClient,
    session: Session,
    citizen_headers: Callable[[User], dict[str, str]],
    create_verified_user: Callable[..., User],
    enterprise: RegistryEnterprise,
    representative: User,
) -> None:
    assert _bind(client, citizen_headers(representative), enterprise.uscc).status_code == 201
    other = create_verified_user(name="陈伟", id_number=id_number_for(order=509))

    response = client.get(f"/api/v1/enterprises/{enterprise.id}", headers=citizen_headers(other))
    missing = client.get("/api/v1/enterprises/999999", headers=citizen_headers(other))

    assert response.status_code == 403
    assert response.get_json()["code"] == "ENTERPRISE_ACCESS_DENIED"
    assert missing.get_json() == {**response.get_json(), "details": {"enterprise_id": 999999}}


def test_staff_tokens_do_not_reach_citizen_enterprise_endpoints(
    client: FlaskClient,
    create_staff: Callable[..., Any],
    staff_headers: Callable[..., dict[str, str]],
) -> None:
    response = client.get(MY_ENTERPRISES, headers=staff_headers(create_staff()))
    assert response.status_code == 403


def test_the_legal_representative_revokes_their_own_binding(
    client: FlaskClient,
    session: Session,
    citizen_headers: Callable[[User], dict[str, str]],
    enterprise: RegistryEnterprise,
    representative: User,
) -> None:
    headers = citizen_headers(representative)
    binding_id = _bind(client, headers, enterprise.uscc).get_json()["id"]

    response = client.delete(f"{MY_ENTERPRISES}/{binding_id}", headers=headers)

    assert response.status_code == 204
    assert client.get(MY_ENTERPRISES, headers=headers).get_json()["items"] == []
    assert client.get(f"/api/v1/enterprises/{enterprise.id}", headers=headers).status_code == 403
    assert client.delete(f"{MY_ENTERPRISES}/{binding_id}", headers=headers).status_code == 404
    assert _bind(client, headers, enterprise.uscc).status_code == 201  # may bind again later
