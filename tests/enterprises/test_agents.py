"""Agents: named by the legal representative, accepted by that very person, revoked with them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.audit.models import AuditEntry
from app.db import utcnow
from app.enterprises import errors, service
from app.enterprises.models import (
    AgentAuthorisation,
    AuthorisationStatus,
    BindingRole,
    BindingStatus,
    EnterpriseBinding,
    RegistryEnterprise,
)
from app.identity.models import User
from app.security.crypto import FieldCipher
from tests.factories.identity import id_number_for

AGENT_NUMBER = id_number_for(dt.date(1992, 5, 17), order=611)


@dataclass
class Firm:
    enterprise: RegistryEnterprise
    legal_rep: User
    legal_rep_binding: EnterpriseBinding
    agent: User


@pytest.fixture
def firm(
    session: Session,
    create_registry_enterprise: Callable[..., RegistryEnterprise],
    create_verified_user: Callable[..., User],
    bind_enterprise: Callable[..., EnterpriseBinding],
) -> Firm:
    enterprise = create_registry_enterprise(
        name="广州盈丰餐饮管理有限公司", legal_rep_name="黄少华"
    )
    legal_rep = create_verified_user(name="黄少华", id_number=id_number_for(order=601))
    binding = bind_enterprise(legal_rep, enterprise)
    agent = create_verified_user(name="叶思婷", id_number=AGENT_NUMBER)
    session.commit()
    return Firm(enterprise, legal_rep, binding, agent)


def _authorise(
    client: FlaskClient,
    headers: dict[str, str],
    firm: Firm,
    name: str = "叶思婷",
    number: str = AGENT_NUMBER,
) -> TestResponse:
    return client.post(
        f"/api/v1/enterprises/{firm.enterprise.id}/agent-authorisations",
        json={"agent_name": name, "agent_id_number": number},
        headers=headers,
    )


def _accept(client: FlaskClient, headers: dict[str, str], authorisation_id: int) -> TestResponse:
    return client.post(
        f"/api/v1/me/agent-authorisations/{authorisation_id}/accept", headers=headers
    )


def test_an_agent_authorised_by_the_legal_representative_then_acts_for_the_enterprise(
    client: FlaskClient,
    session: Session,
    citizen_headers: Callable[[User], dict[str, str]],
    firm: Firm,
) -> None:
    rep_headers, agent_headers = citizen_headers(firm.legal_rep), citizen_headers(firm.agent)

    issued = _authorise(client, rep_headers, firm)
    assert issued.status_code == 201
    authorisation = issued.get_json()
    assert authorisation["agent_name"] == "*思婷"
    assert authorisation["agent_id_number"] == AGENT_NUMBER[:4] + "*" * 10 + AGENT_NUMBER[-4:]
    assert authorisation["status"] == "pending"

    inbox = client.get("/api/v1/me/agent-authorisations", headers=agent_headers).get_json()["items"]
    assert [(i["id"], i["enterprise"]["name"]) for i in inbox] == [
        (authorisation["id"], "广州盈丰餐饮管理有限公司")
    ]
    assert inbox[0]["enterprise"]["legal_rep_name"] == "*少华"

    accepted = _accept(client, agent_headers, authorisation["id"])
    assert accepted.status_code == 201
    binding = accepted.get_json()
    assert binding["role"] == "agent"
    assert binding["authorised_by_binding_id"] == firm.legal_rep_binding.id

    mine = client.get("/api/v1/me/enterprises", headers=agent_headers).get_json()["items"]
    assert [b["enterprise"]["id"] for b in mine] == [firm.enterprise.id]
    detail = client.get(f"/api/v1/enterprises/{firm.enterprise.id}", headers=agent_headers)
    assert detail.status_code == 200 and detail.get_json()["binding"]["role"] == "agent"
    agents = client.get(f"/api/v1/enterprises/{firm.enterprise.id}/agents", headers=rep_headers)
    assert agents.get_json()["items"] == [
        {"id": binding["id"], "agent_name": "*思婷", "created_at": binding["created_at"]}
    ]
    actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions[-2:] == ["enterprise.agent_invited", "enterprise.agent_authorised"]


def test_an_authorisation_is_invisible_and_unusable_to_anyone_else(
    client: FlaskClient,
    session: Session,
    citizen_headers: Callable[[User], dict[str, str]],
    create_verified_user: Callable[..., User],
    firm: Firm,
) -> None:
    authorisation = _authorise(client, citizen_headers(firm.legal_rep), firm).get_json()
    other = create_verified_user(name="叶思婷", id_number=id_number_for(order=612))  # namesake
    headers = citizen_headers(other)
    session.commit()

    assert client.get("/api/v1/me/agent-authorisations", headers=headers).get_json()["items"] == []
    refused = _accept(client, headers, authorisation["id"])
    assert refused.status_code == 404
    session.rollback()
    assert (
        client.get(f"/api/v1/enterprises/{firm.enterprise.id}", headers=headers).status_code == 403
    )


def test_a_matching_id_number_under_another_name_is_not_the_named_person(
    session: Session,
    field_cipher: FieldCipher,
    create_verified_user: Callable[..., User],
    firm: Firm,
) -> None:
    now = utcnow()
    authorisation = service.authorise_agent(
        session, field_cipher, firm.legal_rep, firm.enterprise.id,
        agent_name="叶诗婷", agent_id_number=AGENT_NUMBER, now=now,
    )  # fmt: skip

    assert service.authorisations_for(session, field_cipher, firm.agent, now=now) == []
    with pytest.raises(errors.AuthorisationNotFound):
        service.accept_authorisation(session, field_cipher, firm.agent, authorisation.id, now=now)


def test_an_authorisation_is_used_once(
    session: Session, field_cipher: FieldCipher, firm: Firm
) -> None:
    now = utcnow()
    authorisation = service.authorise_agent(
        session, field_cipher, firm.legal_rep, firm.enterprise.id,
        agent_name="叶思婷", agent_id_number=AGENT_NUMBER, now=now,
    )  # fmt: skip
    binding = service.accept_authorisation(
        session, field_cipher, firm.agent, authorisation.id, now=now
    )
    service.revoke_binding(session, firm.agent, binding.id, now=now)

    with pytest.raises(errors.AuthorisationNotFound):
        service.accept_authorisation(session, field_cipher, firm.agent, authorisation.id, now=now)


def test_an_expired_authorisation_cannot_be_accepted(
    session: Session, field_cipher: FieldCipher, firm: Firm
) -> None:
    issued_at = utcnow()
    authorisation = service.authorise_agent(
        session, field_cipher, firm.legal_rep, firm.enterprise.id,
        agent_name="叶思婷", agent_id_number=AGENT_NUMBER, now=issued_at,
    )  # fmt: skip
    later = issued_at + service.AUTHORISATION_TTL + dt.timedelta(seconds=1)

    assert service.authorisations_for(session, field_cipher, firm.agent, now=later) == []
    with pytest.raises(errors.AuthorisationNotFound):
        service.accept_authorisation(session, field_cipher, firm.agent, authorisation.id, now=later)
    assert authorisation.status == AuthorisationStatus.PENDING


def test_naming_the_same_person_again_replaces_the_open_authorisation(
    session: Session, field_cipher: FieldCipher, firm: Firm
) -> None:
    now = utcnow()
    first = service.authorise_agent(
        session, field_cipher, firm.legal_rep, firm.enterprise.id,
        agent_name="叶思婷", agent_id_number=AGENT_NUMBER, now=now,
    )  # fmt: skip
    second = service.authorise_agent(
        session, field_cipher, firm.legal_rep, firm.enterprise.id,
        agent_name="叶思婷", agent_id_number=AGENT_NUMBER.lower(), now=now,
    )  # fmt: skip

    assert first.status == AuthorisationStatus.CANCELLED
    assert [
        a.id for a in service.authorisations_for(session, field_cipher, firm.agent, now=now)
    ] == [second.id]


def test_an_agent_cannot_authorise_further_agents(
    client: FlaskClient,
    session: Session,
    citizen_headers: Callable[[User], dict[str, str]],
    bind_enterprise: Callable[..., EnterpriseBinding],
    firm: Firm,
) -> None:
    bind_enterprise(firm.agent, firm.enterprise, BindingRole.AGENT, firm.legal_rep_binding)
    session.commit()

    response = _authorise(client, citizen_headers(firm.agent), firm, "陈伟", id_number_for(order=7))

    assert response.status_code == 403
    assert response.get_json()["code"] == "LEGAL_REPRESENTATIVE_ONLY"


def test_a_stranger_cannot_authorise_agents_for_an_enterprise(
    client: FlaskClient,
    citizen_headers: Callable[[User], dict[str, str]],
    firm: Firm,
) -> None:
    response = _authorise(client, citizen_headers(firm.agent), firm, "陈伟", id_number_for(order=7))
    assert response.status_code == 403
    assert response.get_json()["code"] == "ENTERPRISE_ACCESS_DENIED"


@pytest.mark.parametrize(
    ("name", "number", "code"),
    [
        (
            "叶思婷",
            AGENT_NUMBER[:-1] + ("1" if AGENT_NUMBER[-1] != "1" else "2"),
            "ID_NUMBER_INVALID",
        ),
        ("Ye Siting", AGENT_NUMBER, "NAME_INVALID"),
        ("黄少华", id_number_for(order=601), "CANNOT_AUTHORISE_SELF"),
    ],
)
def test_bad_agent_details_are_422(
    client: FlaskClient,
    citizen_headers: Callable[[User], dict[str, str]],
    firm: Firm,
    name: str,
    number: str,
    code: str,
) -> None:
    response = _authorise(client, citizen_headers(firm.legal_rep), firm, name, number)
    assert response.status_code == 422
    assert response.get_json()["code"] == code


def test_the_named_person_may_decline_and_the_legal_rep_may_withdraw(
    client: FlaskClient,
    session: Session,
    citizen_headers: Callable[[User], dict[str, str]],
    firm: Firm,
) -> None:
    rep_headers, agent_headers = citizen_headers(firm.legal_rep), citizen_headers(firm.agent)
    first = _authorise(client, rep_headers, firm).get_json()

    declined = client.post(
        f"/api/v1/me/agent-authorisations/{first['id']}/decline", headers=agent_headers
    )
    second = _authorise(client, rep_headers, firm).get_json()
    withdrawn = client.delete(
        f"/api/v1/enterprises/{firm.enterprise.id}/agent-authorisations/{second['id']}",
        headers=rep_headers,
    )

    assert declined.status_code == 204 and withdrawn.status_code == 204
    assert _accept(client, agent_headers, second["id"]).status_code == 404
    listed = client.get(
        f"/api/v1/enterprises/{firm.enterprise.id}/agent-authorisations", headers=rep_headers
    ).get_json()
    assert [(a["id"], a["status"]) for a in listed["items"]] == [
        (second["id"], "cancelled"),
        (first["id"], "declined"),
    ]


def test_revoking_the_legal_representative_revokes_their_agents_and_open_authorisations(
    client: FlaskClient,
    session: Session,
    citizen_headers: Callable[[User], dict[str, str]],
    field_cipher: FieldCipher,
    create_verified_user: Callable[..., User],
    firm: Firm,
) -> None:
    now = utcnow()
    authorisation = service.authorise_agent(
        session, field_cipher, firm.legal_rep, firm.enterprise.id,
        agent_name="叶思婷", agent_id_number=AGENT_NUMBER, now=now,
    )  # fmt: skip
    agent_binding = service.accept_authorisation(
        session, field_cipher, firm.agent, authorisation.id, now=now
    )
    later_agent = create_verified_user(name="冯家俊", id_number=id_number_for(order=613))
    pending = service.authorise_agent(
        session, field_cipher, firm.legal_rep, firm.enterprise.id,
        agent_name="冯家俊", agent_id_number=id_number_for(order=613), now=now,
    )  # fmt: skip
    session.commit()

    response = client.delete(
        f"/api/v1/me/enterprises/{firm.legal_rep_binding.id}",
        headers=citizen_headers(firm.legal_rep),
    )

    assert response.status_code == 204
    session.refresh(agent_binding)
    session.refresh(pending)
    assert agent_binding.status == BindingStatus.REVOKED
    assert agent_binding.revoked_reason == "cascade"
    assert agent_binding.revoked_by_user_id == firm.legal_rep.id
    assert pending.status == AuthorisationStatus.CANCELLED
    agent_view = client.get(
        f"/api/v1/enterprises/{firm.enterprise.id}", headers=citizen_headers(firm.agent)
    )
    assert agent_view.status_code == 403
    assert service.authorisations_for(session, field_cipher, later_agent, now=now) == []
    revoked = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "enterprise.binding_revoked")
    ).all()
    assert sorted((e.subject_id, e.details["reason"]) for e in revoked) == sorted(
        [(str(firm.legal_rep_binding.id), "self"), (str(agent_binding.id), "cascade")]
    )


def test_the_legal_representative_revokes_one_agent_and_others_cannot(
    client: FlaskClient,
    session: Session,
    citizen_headers: Callable[[User], dict[str, str]],
    create_verified_user: Callable[..., User],
    bind_enterprise: Callable[..., EnterpriseBinding],
    firm: Firm,
) -> None:
    agent_binding = bind_enterprise(
        firm.agent, firm.enterprise, BindingRole.AGENT, firm.legal_rep_binding
    )
    stranger = create_verified_user(name="陈伟", id_number=id_number_for(order=614))
    session.commit()
    path = f"/api/v1/enterprises/{firm.enterprise.id}/agents/{agent_binding.id}"

    by_stranger = client.delete(f"/api/v1/me/enterprises/{agent_binding.id}",
                                headers=citizen_headers(stranger))  # fmt: skip
    by_agent_on_rep = client.delete(
        f"/api/v1/me/enterprises/{firm.legal_rep_binding.id}", headers=citizen_headers(firm.agent)
    )
    by_rep = client.delete(path, headers=citizen_headers(firm.legal_rep))

    assert by_stranger.status_code == 404
    assert by_agent_on_rep.status_code == 404
    assert by_rep.status_code == 204
    session.refresh(agent_binding)
    session.refresh(firm.legal_rep_binding)
    assert agent_binding.revoked_reason == "legal_representative"
    assert firm.legal_rep_binding.is_active


def test_a_failed_acceptance_writes_nothing(
    client: FlaskClient,
    session: Session,
    citizen_headers: Callable[[User], dict[str, str]],
    field_cipher: FieldCipher,
    bind_enterprise: Callable[..., EnterpriseBinding],
    firm: Firm,
) -> None:
    authorisation = service.authorise_agent(
        session, field_cipher, firm.legal_rep, firm.enterprise.id,
        agent_name="叶思婷", agent_id_number=AGENT_NUMBER, now=utcnow(),
    )  # fmt: skip
    # Bound meanwhile through another way: accepting must not leave a claimed authorisation.
    bind_enterprise(firm.agent, firm.enterprise, BindingRole.AGENT, firm.legal_rep_binding)
    session.commit()

    response = _accept(client, citizen_headers(firm.agent), authorisation.id)
    session.rollback()

    assert response.status_code == 409
    session.refresh(authorisation)
    assert authorisation.status == AuthorisationStatus.PENDING
    assert (
        session.scalars(
            select(AgentAuthorisation.agent_binding_id).where(
                AgentAuthorisation.id == authorisation.id
            )
        ).one()
        is None
    )


def test_require_enterprise_access_is_the_guard_for_enterprise_endpoints(
    session: Session,
    create_verified_user: Callable[..., User],
    bind_enterprise: Callable[..., EnterpriseBinding],
    firm: Firm,
) -> None:
    agent_binding = bind_enterprise(
        firm.agent, firm.enterprise, BindingRole.AGENT, firm.legal_rep_binding
    )
    stranger = create_verified_user(name="陈伟", id_number=id_number_for(order=615))

    assert (
        service.require_enterprise_access(session, firm.agent, firm.enterprise.id) == agent_binding
    )
    assert service.require_enterprise_access(session, firm.legal_rep.id, firm.enterprise.id)
    with pytest.raises(errors.EnterpriseAccessDenied):
        service.require_enterprise_access(session, stranger, firm.enterprise.id)
    with pytest.raises(errors.LegalRepresentativeOnly):
        service.require_enterprise_access(
            session, firm.agent, firm.enterprise.id, roles=(BindingRole.LEGAL_REPRESENTATIVE,)
        )


def test_an_agent_who_becomes_legal_representative_is_rebound_in_that_role(
    session: Session,
    field_cipher: FieldCipher,
    bind_enterprise: Callable[..., EnterpriseBinding],
    firm: Firm,
) -> None:
    agent_binding = bind_enterprise(
        firm.agent, firm.enterprise, BindingRole.AGENT, firm.legal_rep_binding
    )
    firm.enterprise.legal_rep_name = "叶思婷"  # the registry reports the new representative
    firm.enterprise.legal_rep_id_index = firm.agent.id_number_index
    firm.agent.face_verified_at = utcnow()

    binding = service.bind_as_legal_representative(
        session, field_cipher, firm.agent, firm.enterprise.uscc, now=utcnow()
    )

    session.refresh(agent_binding)
    session.refresh(firm.legal_rep_binding)
    assert binding.role == BindingRole.LEGAL_REPRESENTATIVE and binding.is_active
    assert agent_binding.revoked_reason == "superseded"
    assert firm.legal_rep_binding.revoked_reason == "legal_rep_changed"
    assert service.enterprises_of(session, firm.agent) == [binding]
    assert service.enterprises_of(session, firm.legal_rep) == []
