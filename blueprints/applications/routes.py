"""The applicant's applications: file (and submit: instant approval when every rule holds),
drafts, withdraw, resubmit after 补正."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.views import MethodView

from app.applications import service
from app.db import get_session, utcnow
from app.identity.models import User
from blueprints.applications.present import present, request_id, services
from blueprints.applications.schemas import (
    ApplicationListArgs,
    ApplicationOut,
    DraftIn,
    FileIn,
    ReasonIn,
    ResubmitIn,
)
from blueprints.authz import citizen_required, current_principal
from blueprints.idempotency import idempotency_doc, idempotency_key
from blueprints.logins import keeping_writes
from blueprints.openapi import Blueprint
from blueprints.pagination import PageRequest, page_from, page_schema

blp = Blueprint(
    "applications",
    __name__,
    url_prefix="/applications",
    description="办件：在线申请、秒批、撤回、补正",
)


def _me() -> User:
    user = get_session().get(User, current_principal().id)
    assert user is not None  # the token names an existing user
    return user


@blp.route("")
class Applications(MethodView):
    @blp.arguments(ApplicationListArgs, location="query")
    @blp.response(200, page_schema(ApplicationOut))
    @citizen_required
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """My applications and those of the enterprises I act for, newest first."""
        session = get_session()
        page = PageRequest.of(args)
        rows, total = service.list_for_applicant(
            session, current_principal().id, offset=page.offset, limit=page.limit
        )
        items = [present(session, a, viewer="applicant") for a in rows]
        return page_from(items, total, args)

    @blp.arguments(FileIn)
    @blp.response(201, ApplicationOut)
    @blp.alt_response(200, schema=ApplicationOut, description="同一 Idempotency-Key 的重试")
    @blp.alt_response(403, description="ENTERPRISE_ACCESS_DENIED / IDENTITY_LEVEL_TOO_LOW")
    @blp.alt_response(404, description="MATTER_NOT_FOUND")
    @blp.alt_response(422, description="FORM_INVALID（逐项中文提示）/ IDEMPOTENCY_KEY_REUSED")
    @blp.doc(parameters=[idempotency_doc("重试同一申请时带相同的值，返回第一次的办件")])
    @citizen_required
    def post(self, body: dict[str, Any]) -> Any:
        """File an application under the matter's current version and submit it: when every
        rule holds it is approved at once with its licence sealed (秒批); otherwise it is
        accepted for a reviewer with the reasons. `submit: false` keeps a draft."""
        session = get_session()
        with keeping_writes(session):
            application, created = service.file(
                session,
                services(session),
                user=_me(),
                matter_code=body["matter_code"],
                form=body["form"],
                enterprise_id=body.get("enterprise_id"),
                submit_now=body["submit"],
                now=utcnow(),
                idempotency_key=idempotency_key(),
                request_id=request_id(),
            )
        session.commit()
        out = present(session, application, viewer="applicant")
        if not created:
            return jsonify(ApplicationOut().dump(out))
        return out, 201


@blp.route("/<string:number>")
class OneApplication(MethodView):
    @blp.response(200, ApplicationOut)
    @blp.alt_response(404, description="APPLICATION_NOT_FOUND（含他人的办件）")
    @citizen_required
    def get(self, number: str) -> dict[str, Any]:
        """One application with its rule results ("广告面积 12㎡ ≤ 20㎡ ✓") and history."""
        session = get_session()
        found = service.for_applicant(session, current_principal().id, number)
        return present(session, found, viewer="applicant")


@blp.route("/<string:number>/form")
class DraftForm(MethodView):
    @blp.arguments(DraftIn)
    @blp.response(200, ApplicationOut)
    @blp.alt_response(409, description="ILLEGAL_TRANSITION：已提交的办件不能修改")
    @citizen_required
    def put(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Replace a draft's form."""
        session = get_session()
        found = service.for_applicant(session, current_principal().id, number)
        service.update_draft(session, found, user=_me(), form=body["form"], now=utcnow())
        session.commit()
        return present(session, found, viewer="applicant")


@blp.route("/<string:number>/submit")
class SubmitDraft(MethodView):
    @blp.response(200, ApplicationOut)
    @blp.alt_response(409, description="ILLEGAL_TRANSITION")
    @blp.alt_response(422, description="FORM_INVALID")
    @citizen_required
    def post(self, number: str) -> dict[str, Any]:
        """Submit a draft (the rules decide as for a direct filing)."""
        session = get_session()
        found = service.for_applicant(session, current_principal().id, number)
        with keeping_writes(session):
            service.submit(
                session, services(session), found, user=_me(), now=utcnow(), request_id=request_id()
            )
        session.commit()
        return present(session, found, viewer="applicant")


@blp.route("/<string:number>/withdraw")
class Withdraw(MethodView):
    @blp.arguments(ReasonIn)
    @blp.response(200, ApplicationOut)
    @blp.alt_response(409, description="ILLEGAL_TRANSITION：已办结的办件不能撤回")
    @citizen_required
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Withdraw an application not yet decided."""
        session = get_session()
        found = service.for_applicant(session, current_principal().id, number)
        with keeping_writes(session):
            service.withdraw(
                session,
                found,
                user=_me(),
                reason=body.get("reason"),
                now=utcnow(),
                request_id=request_id(),
            )
        session.commit()
        return present(session, found, viewer="applicant")


@blp.route("/<string:number>/resubmit")
class Resubmit(MethodView):
    @blp.arguments(ResubmitIn)
    @blp.response(200, ApplicationOut)
    @blp.alt_response(409, description="ILLEGAL_TRANSITION：不在待补正状态")
    @blp.alt_response(422, description="FORM_INVALID")
    @citizen_required
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Answer a request for 补正; the statutory clock resumes."""
        session = get_session()
        found = service.for_applicant(session, current_principal().id, number)
        with keeping_writes(session):
            service.resubmit(
                session,
                found,
                user=_me(),
                form=body.get("form"),
                now=utcnow(),
                request_id=request_id(),
            )
        session.commit()
        return present(session, found, viewer="applicant")
