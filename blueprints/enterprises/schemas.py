"""Request and response bodies of enterprise binding and agent authorisation.

Names of people (the registry's legal representative, agents) leave only masked.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from app.db import utcnow
from app.enterprises.models import AgentAuthorisation, AuthorisationStatus, BindingRole
from app.security.masking import mask_name
from blueprints.fields import BeijingTime


class EnterpriseSummaryOut(Schema):
    id = fields.Integer(required=True)
    uscc = fields.String(required=True, metadata={"description": "统一社会信用代码"})
    name = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "登记状态（存续、注销…）"})
    registered_town = fields.String(allow_none=True, metadata={"description": "登记所在镇街"})
    legal_rep_name = fields.Function(
        lambda enterprise: mask_name(enterprise.legal_rep_name),
        metadata={"description": "法定代表人（脱敏）"},
    )


class EnterpriseDetailOut(EnterpriseSummaryOut):
    entity_type = fields.String(allow_none=True, metadata={"description": "市场主体类型"})
    industry_code = fields.String(allow_none=True, metadata={"description": "行业门类代码"})
    industry = fields.String(allow_none=True)
    registered_capital_yuan = fields.Integer(
        allow_none=True, metadata={"description": "注册资本（元）"}
    )
    established_on = fields.Date(allow_none=True)


class BindingOut(Schema):
    id = fields.Integer(required=True)
    role = fields.Enum(BindingRole, by_value=True, required=True)
    status = fields.String(required=True)
    created_at = BeijingTime(required=True)
    authorised_by_binding_id = fields.Integer(allow_none=True)
    enterprise = fields.Nested(EnterpriseSummaryOut, required=True)


class MyBindingOut(Schema):
    id = fields.Integer(required=True)
    role = fields.Enum(BindingRole, by_value=True, required=True)
    created_at = BeijingTime(required=True)


class EnterpriseOut(Schema):
    enterprise = fields.Nested(EnterpriseDetailOut, required=True)
    binding = fields.Nested(
        MyBindingOut, required=True, metadata={"description": "我与该企业的绑定"}
    )


class BindIn(Schema):
    uscc = fields.String(
        required=True,
        validate=validate.Length(min=1, max=32),
        metadata={"description": "统一社会信用代码（18位）"},
    )
    role = fields.String(
        required=True,
        validate=validate.OneOf([BindingRole.LEGAL_REPRESENTATIVE.value]),
        metadata={"description": "legal_representative；经办人须由法定代表人授权"},
    )


class AgentOut(Schema):
    id = fields.Integer(required=True, metadata={"description": "经办人的绑定 id"})
    agent_name = fields.String(allow_none=True, metadata={"description": "经办人姓名（脱敏）"})
    created_at = BeijingTime(required=True)


class AuthoriseAgentIn(Schema):
    agent_name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "经办人姓名"},
    )
    agent_id_number = fields.String(
        required=True,
        validate=validate.Length(min=1, max=32),
        metadata={"description": "经办人居民身份证号"},
    )


class AuthorisationOut(Schema):
    """An authorisation as the legal representative sees it."""

    id = fields.Integer(required=True)
    agent_name = fields.String(required=True, metadata={"description": "经办人姓名（脱敏）"})
    agent_id_number = fields.String(
        required=True, attribute="agent_id_number_masked", metadata={"description": "脱敏身份证号"}
    )
    status = fields.String(
        required=True,
        metadata={"description": "pending | accepted | declined | cancelled | expired"},
    )
    created_at = BeijingTime(required=True)
    expires_at = BeijingTime(required=True)
    responded_at = BeijingTime(allow_none=True)
    agent_binding_id = fields.Integer(allow_none=True)


class InvitationOut(Schema):
    """An open authorisation as the named agent sees it."""

    id = fields.Integer(required=True)
    enterprise = fields.Nested(EnterpriseSummaryOut, required=True)
    created_at = BeijingTime(required=True)
    expires_at = BeijingTime(required=True)


def authorisation_json(authorisation: AgentAuthorisation, agent_name: str) -> dict[str, Any]:
    """The fields of `AuthorisationOut`, with the agent's name masked here."""
    status = AuthorisationStatus(authorisation.status)
    # A pending row past its expiry is expired to everyone, whether or not a job marked it.
    if status == AuthorisationStatus.PENDING and authorisation.expires_at <= utcnow():
        status = AuthorisationStatus.EXPIRED
    return {
        "id": authorisation.id,
        "agent_name": mask_name(agent_name),
        "agent_id_number_masked": authorisation.agent_id_number_masked,
        "status": status.value,
        "expires_at": authorisation.expires_at,
        "created_at": authorisation.created_at,
        "responded_at": authorisation.responded_at,
        "agent_binding_id": authorisation.agent_binding_id,
    }
