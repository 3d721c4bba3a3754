"""Enterprise identity for citizens: bind as legal representative, authorise agents, revoke.

Every enterprise endpoint here and elsewhere checks the caller's binding with
`app.enterprises.service.require_enterprise_access`.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask.views import MethodView
from sqlalchemy.orm import Session

from app.db import get_session, utcnow
from app.enterprises import service
from app.enterprises.models import EnterpriseBinding
from app.errors import NotFound
from app.identity.models import User
from app.identity.realname import real_name_of
from app.security import get_cipher
from app.security.masking import mask_name
from blueprints.authz import citizen_required, current_principal
from blueprints.enterprises.schemas import (
    AgentOut,
    AuthorisationOut,
    AuthoriseAgentIn,
    BindIn,
    BindingOut,
    EnterpriseOut,
    InvitationOut,
    authorisation_json,
)
from blueprints.logins import keeping_writes
from blueprints.openapi import Blueprint
from blueprints.pagination import PageArgs, page_of, page_schema

blp = Blueprint("enterprises", __name__, url_prefix="", description="企业身份绑定与授权")


def _me(session: Session) -> User:
    user = session.get(User, current_principal().id)
    if user is None:
        raise NotFound("用户不存在")
    return user


def _request_id() -> str | None:
    return g.get("request_id")


@blp.route("/me/enterprises")
class MyEnterprises(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(BindingOut))
    @citizen_required
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The enterprises the caller may act for (active bindings)."""
        return page_of(service.enterprises_of(get_session(), current_principal().id), args)

    @blp.arguments(BindIn)
    @blp.response(201, BindingOut)
    @blp.alt_response(
        403,
        description="未实名认证、未在近期完成人脸核验，或身份证号与登记的法定代表人不一致（已记录）",
    )
    @blp.alt_response(404, description="登记信息中没有该统一社会信用代码")
    @blp.alt_response(409, description="已绑定、企业非存续状态，或登记信息缺少法定代表人身份证号")
    @blp.alt_response(422, description="统一社会信用代码格式或校验位不正确")
    @citizen_required
    def post(self, body: dict[str, str]) -> EnterpriseBinding:
        """Bind the caller to an enterprise as its legal representative."""
        session = get_session()
        with keeping_writes(session):
            binding = service.bind_as_legal_representative(
                session,
                get_cipher(),
                _me(session),
                body["uscc"],
                now=utcnow(),
                face_recent_seconds=current_app.config["FACE_RECENT_SECONDS"],
                request_id=_request_id(),
            )
        session.commit()
        return binding


@blp.route("/me/enterprises/<int:binding_id>")
class MyEnterpriseBinding(MethodView):
    @blp.response(204)
    @blp.alt_response(404, description="绑定不存在、已解除，或无权解除")
    @citizen_required
    def delete(self, binding_id: int) -> None:
        """Revoke a binding: one's own (a legal representative's takes their agents with it),
        or, as legal representative, an agent's."""
        session = get_session()
        service.revoke_binding(
            session, current_principal().id, binding_id, now=utcnow(), request_id=_request_id()
        )
        session.commit()


@blp.route("/enterprises/<int:enterprise_id>")
class Enterprise(MethodView):
    @blp.response(200, EnterpriseOut)
    @blp.alt_response(403, description="未绑定该企业，或登记的法定代表人已变更（已记录）")
    @citizen_required
    def get(self, enterprise_id: int) -> dict[str, Any]:
        """An enterprise the caller is bound to, with the caller's binding."""
        session = get_session()
        with keeping_writes(session):
            binding = service.require_enterprise_access(
                session,
                current_principal().id,
                enterprise_id,
                now=utcnow(),
                request_id=_request_id(),
            )
        return {"enterprise": binding.enterprise, "binding": binding}


@blp.route("/enterprises/<int:enterprise_id>/agents")
class EnterpriseAgents(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(AgentOut))
    @blp.alt_response(403, description="不是该企业的法定代表人")
    @citizen_required
    def get(self, args: dict[str, Any], enterprise_id: int) -> dict[str, Any]:
        """The enterprise's active agents (legal representative only)."""
        cipher = get_cipher()
        session = get_session()
        with keeping_writes(session):
            agents = service.agents_of(
                session, current_principal().id, enterprise_id, request_id=_request_id()
            )
        result = []
        for binding in agents:
            name = real_name_of(cipher, binding.user)
            result.append(
                {
                    "id": binding.id,
                    "agent_name": mask_name(name) if name else None,
                    "created_at": binding.created_at,
                }
            )
        return page_of(result, args)


@blp.route("/enterprises/<int:enterprise_id>/agents/<int:binding_id>")
class EnterpriseAgent(MethodView):
    @blp.response(204)
    @blp.alt_response(403, description="不是该企业的法定代表人")
    @blp.alt_response(404, description="该企业没有这个经办人")
    @citizen_required
    def delete(self, enterprise_id: int, binding_id: int) -> None:
        """Revoke an agent of the enterprise (legal representative only)."""
        session = get_session()
        user_id = current_principal().id
        with keeping_writes(session):
            agents = service.agents_of(session, user_id, enterprise_id, request_id=_request_id())
        agent_ids = {b.id for b in agents}
        if binding_id not in agent_ids:
            raise NotFound("该企业没有这个经办人")
        service.revoke_binding(session, user_id, binding_id, now=utcnow(), request_id=_request_id())
        session.commit()


@blp.route("/enterprises/<int:enterprise_id>/agent-authorisations")
class EnterpriseAuthorisations(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(AuthorisationOut))
    @blp.alt_response(403, description="不是该企业的法定代表人")
    @citizen_required
    def get(self, args: dict[str, Any], enterprise_id: int) -> dict[str, Any]:
        """Agent authorisations the enterprise issued, newest first (legal representative)."""
        cipher = get_cipher()
        session = get_session()
        with keeping_writes(session):
            authorisations = service.authorisations_of(
                session, current_principal().id, enterprise_id, request_id=_request_id()
            )
        page = page_of(authorisations, args)
        return {
            **page,
            "items": [
                authorisation_json(a, service.agent_name_of(cipher, a)) for a in page["items"]
            ],
        }

    @blp.arguments(AuthoriseAgentIn)
    @blp.response(201, AuthorisationOut)
    @blp.alt_response(403, description="不是该企业的法定代表人")
    @blp.alt_response(409, description="该人员已绑定该企业，或待确认的授权过多")
    @blp.alt_response(422, description="姓名或身份证号不正确")
    @citizen_required
    def post(self, body: dict[str, str], enterprise_id: int) -> dict[str, Any]:
        """Authorise a person (by real name and ID number) as agent; they must accept within
        7 days, after verifying their own real name."""
        session = get_session()
        cipher = get_cipher()
        with keeping_writes(session):
            authorisation = service.authorise_agent(
                session,
                cipher,
                _me(session),
                enterprise_id,
                agent_name=body["agent_name"],
                agent_id_number=body["agent_id_number"],
                now=utcnow(),
                request_id=_request_id(),
            )
        session.commit()
        return authorisation_json(authorisation, service.agent_name_of(cipher, authorisation))


@blp.route("/enterprises/<int:enterprise_id>/agent-authorisations/<int:authorisation_id>")
class EnterpriseAuthorisation(MethodView):
    @blp.response(204)
    @blp.alt_response(403, description="不是该企业的法定代表人")
    @blp.alt_response(404, description="授权不存在或已处理")
    @citizen_required
    def delete(self, enterprise_id: int, authorisation_id: int) -> None:
        """Withdraw an authorisation not yet answered (legal representative)."""
        session = get_session()
        with keeping_writes(session):
            service.cancel_authorisation(
                session,
                current_principal().id,
                enterprise_id,
                authorisation_id,
                now=utcnow(),
                request_id=_request_id(),
            )
        session.commit()


@blp.route("/me/agent-authorisations")
class MyInvitations(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(InvitationOut))
    @citizen_required
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Open agent authorisations addressed to the caller (by their verified identity)."""
        session = get_session()
        invitations = service.authorisations_for(session, get_cipher(), _me(session), now=utcnow())
        return page_of(invitations, args)


@blp.route("/me/agent-authorisations/<int:authorisation_id>/accept")
class AcceptInvitation(MethodView):
    @blp.response(201, BindingOut)
    @blp.alt_response(403, description="未实名认证")
    @blp.alt_response(404, description="授权不存在、不是给您的、已处理或已过期")
    @blp.alt_response(409, description="已绑定该企业")
    @citizen_required
    def post(self, authorisation_id: int) -> EnterpriseBinding:
        """Accept an authorisation: the caller becomes an agent of the enterprise."""
        session = get_session()
        with keeping_writes(session):
            binding = service.accept_authorisation(
                session,
                get_cipher(),
                _me(session),
                authorisation_id,
                now=utcnow(),
                request_id=_request_id(),
            )
        session.commit()
        return binding


@blp.route("/me/agent-authorisations/<int:authorisation_id>/decline")
class DeclineInvitation(MethodView):
    @blp.response(204)
    @blp.alt_response(404, description="授权不存在、不是给您的、已处理或已过期")
    @citizen_required
    def post(self, authorisation_id: int) -> None:
        """Decline an authorisation addressed to the caller."""
        session = get_session()
        service.decline_authorisation(
            session,
            get_cipher(),
            _me(session),
            authorisation_id,
            now=utcnow(),
            request_id=_request_id(),
        )
        session.commit()
