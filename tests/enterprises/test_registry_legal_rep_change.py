"""The registry changes an enterprise's legal representative: the old one, and the agents they
authorised, lose the enterprise at once, and its subsidy account waits for the new one.

The registry feed (`load_registry`) is the authority; the access guard refuses a legal
representative the registry no longer names however the row came to change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry
from app.db import utcnow
from app.enterprises import service
from app.enterprises.models import (
    AgentAuthorisation,
    AuthorisationStatus,
    BindingRole,
    BindingStatus,
    EnterpriseBinding,
    RegistryEnterprise,
)
from app.enterprises.registry import load_registry
from app.identity.models import User
from app.identity.realname import ID_NUMBER_CONTEXT
from app.matters import catalogue
from app.matters.cli import CATALOGUE_DIR
from app.organisation.catalogue import DEPARTMENTS
from app.policies.models import ReceivingAccount
from app.security.crypto import FieldCipher
from tests.factories.identity import id_number_for

API = "/api/v1"
COMPANY = "广州市番禺区鸿盈贸易有限公司"
OLD_ID = id_number_for(order=701)
NEW_ID = id_number_for(order=702)
ACCOUNT = {
    "bank_name": "中国工商银行番禺支行",
    "account_name": COMPANY,
    "account_number": "6222020200112233445",
}


@dataclass
class Firm:
    enterprise: RegistryEnterprise
    old_rep: User
    old_rep_binding: EnterpriseBinding
    agent: User
    agent_binding: EnterpriseBinding
    invitation: AgentAuthorisation
    successor: User


@pytest.fixture
def firm(
    session: Session,
    field_cipher: FieldCipher,
    create_registry_enterprise: Callable[..., RegistryEnterprise],
    create_verified_user: Callable[..., User],
    bind_enterprise: Callable[..., EnterpriseBinding],
) -> Firm:
    """陈伟 is the registered legal representative, bound, with an agent, an invitation still
    open and a confirmed receiving account; 李强 will succeed him."""
    enterprise = create_registry_enterprise(
        name=COMPANY, legal_rep_name="陈伟", legal_rep_id_number=OLD_ID
    )
    old_rep = create_verified_user(name="陈伟", id_number=OLD_ID, level="face")
    old_rep_binding = bind_enterprise(old_rep, enterprise)
    agent = create_verified_user(name="叶思婷", id_number=id_number_for(order=703), level="face")
    agent_binding = bind_enterprise(agent, enterprise, BindingRole.AGENT, old_rep_binding)
    invitation = service.authorise_agent(
        session, field_cipher, old_rep, enterprise.id,
        agent_name="王芳", agent_id_number=id_number_for(order=704), now=utcnow(),
    )  # fmt: skip
    session.add(
        ReceivingAccount(
            enterprise_id=enterprise.id,
            bank_name="中国工商银行番禺支行",
            account_name=COMPANY,
            account_number_sealed="x",
            account_number_masked="****3445",
            confirmed_by_user_id=old_rep.id,
            confirmed_at=utcnow(),
        )
    )
    successor = create_verified_user(name="李强", id_number=NEW_ID, level="face")
    session.commit()
    return Firm(enterprise, old_rep, old_rep_binding, agent, agent_binding, invitation, successor)


def _feed_row(firm: Firm, **changes: Any) -> dict[str, Any]:
    """The registry feed's row for the firm, as it stands before any change."""
    row = {
        "uscc": firm.enterprise.uscc,
        "name": COMPANY,
        "legal_rep_name": "陈伟",
        "legal_rep_id_number": OLD_ID,
        "status": "存续",
        "registered_town": "市桥街",
        "established_on": "2015-06-01",
    }
    return {**row, **changes}


def _registry_reports(session: Session, field_cipher: FieldCipher, row: dict[str, Any]) -> None:
    """The registry feed is loaded, then committed as an import would."""
    load_registry(session, [row], cipher=field_cipher, now=utcnow())
    session.commit()


def _successor_in_registry(session: Session, field_cipher: FieldCipher, firm: Firm) -> None:
    _registry_reports(
        session, field_cipher, _feed_row(firm, legal_rep_name="李强", legal_rep_id_number=NEW_ID)
    )


def _audit(session: Session, action: str) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
    )


def _account(session: Session, firm: Firm) -> ReceivingAccount:
    session.expire_all()
    account = session.get(ReceivingAccount, firm.enterprise.id)
    assert account is not None
    return account


def test_a_new_legal_representative_in_the_registry_ends_the_old_binding_with_its_agents(
    session: Session, field_cipher: FieldCipher, firm: Firm
) -> None:
    _successor_in_registry(session, field_cipher, firm)

    session.expire_all()
    assert (firm.old_rep_binding.status, firm.old_rep_binding.revoked_reason) == (
        BindingStatus.REVOKED,
        "legal_rep_changed",
    )
    assert firm.old_rep_binding.revoked_by_user_id is None
    assert (firm.agent_binding.status, firm.agent_binding.revoked_reason) == (
        BindingStatus.REVOKED,
        "cascade",
    )
    assert firm.invitation.status == AuthorisationStatus.CANCELLED
    account = _account(session, firm)
    assert account.is_frozen and account.frozen_reason == "legal_rep_changed"

    revoked = _audit(session, "enterprise.binding_revoked")
    assert [(e.actor_kind, e.actor_id, e.subject_id, e.details["reason"]) for e in revoked] == [
        ("system", None, str(firm.old_rep_binding.id), "legal_rep_changed"),
        ("system", None, str(firm.agent_binding.id), "cascade"),
    ]
    assert all(e.details["source"] == "registry" for e in revoked)
    [frozen] = _audit(session, "policy.account_frozen")
    assert (frozen.actor_kind, frozen.details) == ("system", {"reason": "legal_rep_changed"})
    [change] = _audit(session, "enterprise.legal_rep_changed")
    assert (change.actor_kind, change.subject_id) == ("system", str(firm.enterprise.id))
    assert change.details == {
        "source": "registry",
        "revoked_binding_ids": [firm.old_rep_binding.id, firm.agent_binding.id],
        "receiving_account_frozen": True,
    }


def test_the_old_legal_representative_is_refused_the_enterprise_its_account_and_its_agents(
    client: FlaskClient,
    session: Session,
    field_cipher: FieldCipher,
    citizen_headers: Callable[[User], dict[str, str]],
    firm: Firm,
) -> None:
    headers = citizen_headers(firm.old_rep)
    enterprise = f"{API}/enterprises/{firm.enterprise.id}"
    _successor_in_registry(session, field_cipher, firm)

    answers = {
        "detail": client.get(enterprise, headers=headers),
        "account": client.get(f"{enterprise}/policy-account", headers=headers),
        "set account": client.put(f"{enterprise}/policy-account", json=ACCOUNT, headers=headers),
        "agents": client.get(f"{enterprise}/agents", headers=headers),
        "invitations": client.get(f"{enterprise}/agent-authorisations", headers=headers),
        "authorise": client.post(
            f"{enterprise}/agent-authorisations",
            json={"agent_name": "王芳", "agent_id_number": id_number_for(order=705)},
            headers=headers,
        ),
        "revoke agent": client.delete(
            f"{enterprise}/agents/{firm.agent_binding.id}", headers=headers
        ),
    }

    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(answers, 403)
    assert {a.get_json()["code"] for a in answers.values()} == {"ENTERPRISE_ACCESS_DENIED"}
    mine = client.get(f"{API}/me/enterprises", headers=headers).get_json()
    assert mine["items"] == []
    account = _account(session, firm)
    assert account.is_frozen and account.confirmed_by_user_id == firm.old_rep.id


def test_the_old_agents_are_refused_the_policy_feed_and_filing(
    client: FlaskClient,
    session: Session,
    field_cipher: FieldCipher,
    citizen_headers: Callable[[User], dict[str, str]],
    create_department: Callable[..., Any],
    firm: Firm,
) -> None:
    for code, name in DEPARTMENTS:
        create_department(code=code, name=name)
    catalogue.load_directory(session, CATALOGUE_DIR, now=utcnow())
    session.commit()
    headers = citizen_headers(firm.agent)
    _successor_in_registry(session, field_cipher, firm)

    feed = client.get(f"{API}/enterprises/{firm.enterprise.id}/policy-feed", headers=headers)
    filed = client.post(
        f"{API}/applications",
        json={
            "matter_code": "PY-CGJ-LSGG",
            "form": {},
            "enterprise_id": firm.enterprise.id,
            "submit": False,
        },
        headers=headers,
    )

    assert [(a.status_code, a.get_json().get("code")) for a in (feed, filed)] == [
        (403, "ENTERPRISE_ACCESS_DENIED"),
        (403, "ENTERPRISE_ACCESS_DENIED"),
    ]


def test_the_new_legal_representative_binds_and_confirms_the_frozen_account(
    client: FlaskClient,
    session: Session,
    field_cipher: FieldCipher,
    citizen_headers: Callable[[User], dict[str, str]],
    firm: Firm,
) -> None:
    headers = citizen_headers(firm.successor)
    _successor_in_registry(session, field_cipher, firm)
    # Frozen by the registry load itself, before anyone binds (who may never come).
    assert _account(session, firm).is_frozen

    bound = client.post(
        f"{API}/me/enterprises",
        json={"uscc": firm.enterprise.uscc, "role": "legal_representative"},
        headers=headers,
    )
    shown = client.get(f"{API}/enterprises/{firm.enterprise.id}/policy-account", headers=headers)
    confirmed = client.put(
        f"{API}/enterprises/{firm.enterprise.id}/policy-account", json=ACCOUNT, headers=headers
    )

    assert bound.status_code == 201, bound.get_json()
    assert bound.get_json()["role"] == "legal_representative"
    assert _audit(session, "enterprise.binding_challenged") == []  # nobody left to push out
    assert shown.status_code == 200 and shown.get_json()["frozen"] is True
    assert confirmed.status_code == 200, confirmed.get_json()
    assert confirmed.get_json()["frozen"] is False
    account = _account(session, firm)
    assert not account.is_frozen and account.confirmed_by_user_id == firm.successor.id


def test_reloading_the_registry_with_the_same_legal_representative_changes_nothing(
    session: Session, field_cipher: FieldCipher, firm: Firm
) -> None:
    before = session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1))

    _registry_reports(session, field_cipher, _feed_row(firm))
    # A corrected spelling of the same person's name (same ID number) is no change either.
    _registry_reports(session, field_cipher, _feed_row(firm, legal_rep_name="陳偉"))

    session.expire_all()
    assert firm.old_rep_binding.is_active and firm.agent_binding.is_active
    assert firm.invitation.status == AuthorisationStatus.PENDING
    assert not _account(session, firm).is_frozen
    since = select(AuditEntry.action).where(AuditEntry.id > (before or 0))
    assert session.scalars(since).all() == []


@pytest.mark.parametrize(
    ("legal_rep_name", "ends"),
    [("陈伟", False), ("李强", True)],
    ids=["same-name-without-id-number", "new-name-without-id-number"],
)
def test_a_row_without_the_id_number_is_judged_by_the_name(
    session: Session, field_cipher: FieldCipher, firm: Firm, legal_rep_name: str, ends: bool
) -> None:
    # An incomplete feed row (no ID number) is no change; one naming someone else is.
    _registry_reports(
        session,
        field_cipher,
        _feed_row(firm, legal_rep_name=legal_rep_name, legal_rep_id_number=None),
    )

    session.expire_all()
    assert firm.old_rep_binding.is_active is not ends
    assert firm.agent_binding.is_active is not ends
    assert _account(session, firm).is_frozen is ends


def test_a_legal_representative_the_registry_no_longer_names_is_refused_and_audited(
    client: FlaskClient,
    session: Session,
    field_cipher: FieldCipher,
    citizen_headers: Callable[[User], dict[str, str]],
    firm: Firm,
) -> None:
    # Changed behind the feed's back (a hand-made fix, another import): no revocation ran.
    session.execute(
        update(RegistryEnterprise)
        .where(RegistryEnterprise.id == firm.enterprise.id)
        .values(
            legal_rep_name="李强",
            legal_rep_id_index=field_cipher.blind_index(NEW_ID, context=ID_NUMBER_CONTEXT),
        )
    )
    session.commit()
    rep, agent = citizen_headers(firm.old_rep), citizen_headers(firm.agent)
    enterprise = f"{API}/enterprises/{firm.enterprise.id}"

    detail = client.get(enterprise, headers=rep)
    account = client.put(f"{enterprise}/policy-account", json=ACCOUNT, headers=rep)
    feed = client.get(f"{enterprise}/policy-feed", headers=agent)

    for answer in (detail, account, feed):
        assert answer.status_code == 403
        assert answer.get_json()["code"] == "LEGAL_REP_CHANGED"
    session.rollback()
    refused = _audit(session, "enterprise.access_refused")
    assert [(e.actor_id, e.details["binding_id"]) for e in refused] == [
        (firm.old_rep.id, firm.old_rep_binding.id),
        (firm.old_rep.id, firm.old_rep_binding.id),
        (firm.agent.id, firm.agent_binding.id),
    ]
    assert {e.details["reason"] for e in refused} == {"legal_rep_changed"}
    assert _account(session, firm).confirmed_by_user_id == firm.old_rep.id
