"""E-licences: the holder's wallet, the short-lived QR shown at a counter (亮证), its public
verification, and revocation by the issuing department."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from app.audit.service import Actor
from app.db import get_session, utcnow
from app.licences import service
from app.licences.errors import LicenceNotFound
from app.licences.models import Licence
from app.queueing.settings import from_config as queue_settings
from app.seals import get_seal_context
from app.seals.models import IssuedDocument, Seal
from blueprints.authz import ADMIN_ROLE, citizen_required, current_principal, public, staff_required
from blueprints.fields import BeijingTime
from blueprints.openapi import Blueprint
from blueprints.pagination import PageArgs, page_of, page_schema

blp = Blueprint("licences", __name__, url_prefix="", description="电子证照：卡包、亮证、核验、撤销")

STATES = ["valid", "expired", "revoked"]


class LicenceOut(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True, metadata={"description": "证照编号"})
    type = fields.String(required=True, metadata={"description": "证照类型（文书模板）"})
    title = fields.String(required=True)
    matter_code = fields.String(required=True)
    holder_kind = fields.String(required=True, validate=validate.OneOf(["person", "enterprise"]))
    holder = fields.String(required=True, metadata={"description": "持证人（个人姓名已脱敏）"})
    data = fields.Dict(required=True)
    valid_from = BeijingTime(required=True)
    valid_until = BeijingTime(allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf(STATES))
    document_code = fields.String(required=True, metadata={"description": "签章文书核验码"})


class ShowCodeOut(Schema):
    token = fields.String(required=True, metadata={"description": "生成二维码的内容，窗口扫码核验"})
    expires_at = BeijingTime(required=True)


class VerifiedOut(Schema):
    status = fields.String(required=True, validate=validate.OneOf(STATES))
    status_label = fields.String(required=True)
    number = fields.String(required=True)
    title = fields.String(required=True)
    holder = fields.String(required=True)
    issuer = fields.String(required=True)
    valid_until = BeijingTime(allow_none=True)
    data = fields.Dict(required=True)
    document_code = fields.String(required=True)


class RevokeIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=2, max=200))


def _code(document: IssuedDocument) -> str:
    """The document's verification code (GET /api/v1/seals/verify/{code})."""
    return get_seal_context().codes.code_for(document.public_id)


_LABELS = {"valid": "有效", "expired": "已过期", "revoked": "已撤销"}


def _out(licence: Licence, document: IssuedDocument | None, now: Any) -> dict[str, Any]:
    return {
        "id": licence.id,
        "number": licence.number,
        "type": licence.template,
        "title": licence.title,
        "matter_code": licence.matter_code,
        "holder_kind": licence.holder_kind,
        "holder": licence.holder_masked,
        "data": licence.data,
        "valid_from": licence.valid_from,
        "valid_until": licence.valid_until,
        "status": licence.state(now),
        "document_code": _code(document) if document else "",
    }


@blp.route("/me/licences")
class Wallet(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(LicenceOut))
    @citizen_required
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """My licence wallet (卡包): mine and my enterprises', newest first."""
        session, now = get_session(), utcnow()
        licences = service.wallet(session, current_principal().id)
        items = [_out(x, session.get(IssuedDocument, x.document_id), now) for x in licences]
        return page_of(items, args)


@blp.route("/me/licences/<int:licence_id>")
class WalletLicence(MethodView):
    @blp.response(200, LicenceOut)
    @blp.alt_response(404, description="LICENCE_NOT_FOUND（含他人的证照）")
    @citizen_required
    def get(self, licence_id: int) -> dict[str, Any]:
        session = get_session()
        licence = service.licence_in_wallet(session, current_principal().id, licence_id)
        return _out(licence, session.get(IssuedDocument, licence.document_id), utcnow())


@blp.route("/me/licences/<int:licence_id>/show-code")
class ShowCode(MethodView):
    @blp.response(200, ShowCodeOut)
    @blp.alt_response(404, description="LICENCE_NOT_FOUND")
    @blp.alt_response(409, description="LICENCE_NOT_SHOWABLE：已过期或已撤销")
    @citizen_required
    def post(self, licence_id: int) -> Any:
        """A QR token for showing the licence at a counter (亮证), valid for two minutes."""
        session = get_session()
        licence = service.licence_in_wallet(session, current_principal().id, licence_id)
        code = service.show_code(queue_settings(current_app.config), licence, now=utcnow())
        return {"token": code.token, "expires_at": code.expires_at}


@blp.route("/licences/verify/<string:token>")
class VerifyLicence(MethodView):
    @blp.response(200, VerifiedOut)
    @blp.alt_response(422, description="CODE_EXPIRED：二维码已过期，请持证人刷新")
    @blp.alt_response(404, description="LICENCE_CODE_INVALID / LICENCE_NOT_FOUND")
    @public
    def get(self, token: str) -> dict[str, Any]:
        """What a counter sees on scanning a shown licence: valid, expired or revoked."""
        session, now = get_session(), utcnow()
        verified = service.verify_code(session, queue_settings(current_app.config), token, now=now)
        licence = verified.licence
        return {
            "status": verified.status,
            "status_label": _LABELS[verified.status],
            "number": licence.number,
            "title": licence.title,
            "holder": licence.holder_masked,
            "issuer": verified.issuer,
            "valid_until": licence.valid_until,
            "data": licence.data,
            "document_code": _code(verified.document),
        }


@blp.route("/licences/<int:licence_id>/revoke")
class RevokeLicence(MethodView):
    @blp.arguments(RevokeIn)
    @blp.response(200, LicenceOut)
    @blp.alt_response(404, description="LICENCE_NOT_FOUND")
    @blp.alt_response(409, description="LICENCE_ALREADY_REVOKED")
    @staff_required("reviewer")
    def post(self, body: dict[str, Any], licence_id: int) -> dict[str, Any]:
        """Revoke a licence of my department (its sealed document is revoked with it)."""
        session, now = get_session(), utcnow()
        licence = session.get(Licence, licence_id)
        document = session.get(IssuedDocument, licence.document_id) if licence else None
        if licence is None or document is None:
            raise LicenceNotFound(licence_id=licence_id)
        seal = session.get(Seal, document.seal_id)
        assert seal is not None
        principal = current_principal()
        if not principal.has_role(ADMIN_ROLE):
            allowed = principal.scopes.get("reviewer")
            if allowed is not None and seal.department_id not in allowed:
                raise LicenceNotFound(licence_id=licence_id)
        service.revoke(
            session, licence, reason=body["reason"], actor=Actor("staff", principal.id), now=now
        )
        session.commit()
        return _out(licence, document, now)
