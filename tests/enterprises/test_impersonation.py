"""Who may act for an enterprise: the review's impersonation, reproduced through the API.

A new citizen gave the real name 黄泽海 with any ID number whose check digit was valid, bound
USCC 914401136188410631 as its legal representative and redirected its subsidy account to
"攻击者"; the genuine person, arriving later, got 409. Here the real-name and face checks go
through the (emulated) identity service over HTTP, as in production.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry
from app.db import utcnow
from app.enterprises.models import (
    BindingRole,
    BindingStatus,
    EnterpriseBinding,
    RegistryEnterprise,
)
from app.identity.models import User
from app.integrations.verification import get_verification
from app.policies.models import ReceivingAccount
from tests.factories.identity import id_number_for

USCC = "914401136188410631"
COMPANY = "广州市番禺区泽海五金制品有限公司"
GENUINE = ("黄泽海", id_number_for(order=811))
ATTACKER_ID = id_number_for(order=812)
ACCOUNT = {"bank_name": "中国工商银行番禺支行", "account_number": "6222020200112233445"}


@pytest.fixture
def company(
    session: Session, create_registry_enterprise: Callable[..., RegistryEnterprise]
) -> RegistryEnterprise:
    row = create_registry_enterprise(
        uscc=USCC, name=COMPANY, legal_rep_name=GENUINE[0], legal_rep_id_number=GENUINE[1]
    )
    session.commit()
    return row


@pytest.fixture
def face_token(app: Flask) -> Callable[[str, str], str]:
    """What the mini-program's face SDK hands the page after the person's liveness check."""
    emulator = get_verification(app).emulator
    assert emulator is not None, "tests run against the verification emulator"
    emulator.add_person(*GENUINE)  # the national database knows the genuine person
    return emulator.face_token


def _new_citizen(create_user: Callable[..., User], session: Session) -> User:
    user = create_user()
    session.commit()
    return user


def _verify(client: FlaskClient, headers: dict[str, str], name: str, number: str) -> Any:
    return client.post(
        "/api/v1/me/realname", json={"name": name, "id_number": number}, headers=headers
    )


def _face(client: FlaskClient, headers: dict[str, str], token: str) -> Any:
    return client.post("/api/v1/me/realname/face", json={"verify_token": token}, headers=headers)


def _bind(client: FlaskClient, headers: dict[str, str]) -> Any:
    return client.post(
        "/api/v1/me/enterprises",
        json={"uscc": USCC, "role": "legal_representative"},
        headers=headers,
    )


def _set_account(
    client: FlaskClient, headers: dict[str, str], enterprise_id: int, name: str
) -> Any:
    return client.put(
        f"/api/v1/enterprises/{enterprise_id}/policy-account",
        json={**ACCOUNT, "account_name": name},
        headers=headers,
    )


def _audit(session: Session, action: str) -> list[AuditEntry]:
    session.rollback()
    return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _genuine_person_arrives(
    client: FlaskClient,
    headers: dict[str, str],
    face_token: Callable[[str, str], str],
) -> None:
    assert _verify(client, headers, *GENUINE).status_code == 200
    faced = _face(client, headers, face_token(*GENUINE))
    assert faced.status_code == 200, faced.get_json()
    assert faced.get_json()["identity_level"] == "face"


def test_the_reported_impersonation_is_refused_and_the_genuine_person_binds(
    client: FlaskClient,
    session: Session,
    create_user: Callable[..., User],
    citizen_headers: Callable[[User], dict[str, str]],
    company: RegistryEnterprise,
    face_token: Callable[[str, str], str],
) -> None:
    attacker = _new_citizen(create_user, session)
    attacker_headers = citizen_headers(attacker)
    # The service has no record of this number, so it passes as somebody's: a name and a
    # number that belong together say nothing about whose company it is.
    assert _verify(client, attacker_headers, GENUINE[0], ATTACKER_ID).status_code == 200
    assert _face(client, attacker_headers, face_token(GENUINE[0], ATTACKER_ID)).status_code == 200

    refused = _bind(client, attacker_headers)
    assert refused.status_code == 403, refused.get_json()
    assert refused.get_json()["code"] == "NOT_LEGAL_REPRESENTATIVE"
    account = _set_account(client, attacker_headers, company.id, "攻击者")
    assert account.status_code == 403
    [entry] = _audit(session, "enterprise.bind_refused")
    assert (entry.actor_id, entry.details["reason"]) == (attacker.id, "not_legal_rep")

    genuine = _new_citizen(create_user, session)
    headers = citizen_headers(genuine)
    _genuine_person_arrives(client, headers, face_token)
    bound = _bind(client, headers)
    assert bound.status_code == 201, bound.get_json()

    redirected = _set_account(client, headers, company.id, "攻击者")
    assert redirected.status_code == 422
    assert redirected.get_json()["code"] == "ACCOUNT_NOT_VERIFIED"
    assert _audit(session, "policy.account_refused")[0].details["reason"] == "name_differs"
    confirmed = _set_account(client, headers, company.id, COMPANY.replace("番禺区", "番禺区 "))
    assert confirmed.status_code == 200, confirmed.get_json()
    assert confirmed.get_json()["account_name"] == COMPANY
    assert confirmed.get_json()["frozen"] is False


def test_a_check_digit_alone_does_not_reach_enterprise_actions(
    client: FlaskClient,
    session: Session,
    create_verified_user: Callable[..., User],
    citizen_headers: Callable[[User], dict[str, str]],
    company: RegistryEnterprise,
) -> None:
    checksum_only = create_verified_user(*GENUINE, level="checksum")
    session.commit()

    refused = _bind(client, citizen_headers(checksum_only))

    assert refused.status_code == 403
    body = refused.get_json()
    assert (body["code"], body["details"]["needed"], body["details"]["held"]) == (
        "IDENTITY_LEVEL_TOO_LOW",
        "face",
        "checksum",
    )
    [entry] = _audit(session, "identity.level_refused")
    assert entry.details["action"] == "enterprise.bind_legal_representative"


def test_a_verified_name_without_a_recent_face_is_asked_for_one(
    client: FlaskClient,
    session: Session,
    app: Flask,
    create_verified_user: Callable[..., User],
    citizen_headers: Callable[[User], dict[str, str]],
    company: RegistryEnterprise,
) -> None:
    user = create_verified_user(*GENUINE, level="face")
    user.face_verified_at = utcnow().replace(year=2025)  # long ago
    session.commit()

    refused = _bind(client, citizen_headers(user))

    assert refused.status_code == 403
    assert refused.get_json()["details"]["needed"] == "face"
    assert refused.get_json()["details"]["held"] == "verified"


def test_a_registry_row_without_the_id_number_is_not_bound_by_name(
    client: FlaskClient,
    session: Session,
    create_registry_enterprise: Callable[..., RegistryEnterprise],
    create_verified_user: Callable[..., User],
    citizen_headers: Callable[[User], dict[str, str]],
) -> None:
    create_registry_enterprise(uscc=USCC, name=COMPANY, legal_rep_name=GENUINE[0])
    user = create_verified_user(*GENUINE, level="face")
    session.commit()

    refused = _bind(client, citizen_headers(user))

    assert refused.status_code == 409
    assert refused.get_json()["code"] == "REGISTRY_LEGAL_REP_UNKNOWN"
    assert _audit(session, "enterprise.bind_refused")[0].details == {
        "reason": "registry_id_missing"
    }


def test_an_earlier_binding_is_challenged_and_the_account_frozen_until_confirmed(
    client: FlaskClient,
    session: Session,
    create_user: Callable[..., User],
    create_verified_user: Callable[..., User],
    bind_enterprise: Callable[..., EnterpriseBinding],
    citizen_headers: Callable[[User], dict[str, str]],
    company: RegistryEnterprise,
    face_token: Callable[[str, str], str],
) -> None:
    # A binding made before ID numbers were compared, and the account it set.
    impostor = create_verified_user(GENUINE[0], ATTACKER_ID)
    earlier = bind_enterprise(impostor, company)
    session.add(
        ReceivingAccount(
            enterprise_id=company.id,
            bank_name="某银行",
            account_name="攻击者",
            account_number_sealed="x",
            account_number_masked="****9999",
            confirmed_by_user_id=impostor.id,
            confirmed_at=utcnow(),
        )
    )
    session.commit()
    genuine = _new_citizen(create_user, session)
    headers = citizen_headers(genuine)
    _genuine_person_arrives(client, headers, face_token)

    bound = _bind(client, headers)

    assert bound.status_code == 201, bound.get_json()
    session.rollback()
    session.refresh(earlier)
    assert (earlier.status, earlier.revoked_reason) == (BindingStatus.REVOKED, "legal_rep_changed")
    [challenge] = _audit(session, "enterprise.binding_challenged")
    assert challenge.details["challenged_user_id"] == impostor.id
    assert challenge.details["receiving_account_frozen"] is True
    account = session.get(ReceivingAccount, company.id)
    assert account is not None and account.is_frozen
    shown = client.get(f"/api/v1/enterprises/{company.id}/policy-account", headers=headers)
    assert shown.get_json()["frozen"] is True

    confirmed = _set_account(client, headers, company.id, COMPANY)
    assert confirmed.status_code == 200 and confirmed.get_json()["frozen"] is False
    active = session.scalars(
        select(EnterpriseBinding).where(
            EnterpriseBinding.enterprise_id == company.id,
            EnterpriseBinding.role == BindingRole.LEGAL_REPRESENTATIVE,
            EnterpriseBinding.status == BindingStatus.ACTIVE,
        )
    ).one()
    assert active.user_id == genuine.id


def test_a_face_token_of_someone_else_is_refused_and_audited(
    client: FlaskClient,
    session: Session,
    create_verified_user: Callable[..., User],
    citizen_headers: Callable[[User], dict[str, str]],
    face_token: Callable[[str, str], str],
) -> None:
    user = create_verified_user("陈伟", id_number_for(order=813))
    session.commit()
    headers = citizen_headers(user)

    borrowed = _face(client, headers, face_token(*GENUINE))
    used_up = _face(client, headers, "not-a-token-at-all")

    assert borrowed.status_code == 403
    assert borrowed.get_json()["code"] == "FACE_VERIFICATION_FAILED"
    assert used_up.status_code == 403
    reasons = [e.details["reason"] for e in _audit(session, "user.face_rejected")]
    assert reasons == ["not_this_person", "token_invalid"]


def test_agents_need_a_verified_identity_not_a_check_digit(
    client: FlaskClient,
    session: Session,
    create_verified_user: Callable[..., User],
    bind_enterprise: Callable[..., EnterpriseBinding],
    citizen_headers: Callable[[User], dict[str, str]],
    company: RegistryEnterprise,
) -> None:
    checksum_rep = create_verified_user(*GENUINE, level="checksum")
    bind_enterprise(checksum_rep, company)
    session.commit()

    refused = client.post(
        f"/api/v1/enterprises/{company.id}/agent-authorisations",
        json={"agent_name": "叶思婷", "agent_id_number": id_number_for(order=814)},
        headers=citizen_headers(checksum_rep),
    )

    assert refused.status_code == 403
    assert refused.get_json()["details"]["needed"] == "verified"


def test_the_access_token_shows_the_identity_level(
    app: Flask,
    session: Session,
    create_verified_user: Callable[..., User],
    start_login: Callable[..., Any],
) -> None:
    user = create_verified_user("陈伟", id_number_for(order=815), level="face")
    session.commit()

    claims = jwt.decode(
        start_login("user", user.id).access_token, options={"verify_signature": False}
    )

    assert claims["ial"] == "verified"
    assert claims["face_at"] == int(user.face_verified_at.timestamp())
