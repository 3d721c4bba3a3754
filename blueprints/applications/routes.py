"""The applicant's applications: file (and submit: instant approval when every rule holds),
drafts, withdraw, resubmit after 补正."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request
from flask.views import MethodView
from sqlalchemy.orm import Session

from app.applications import service, tolerance
from app.applications.models import Application
from app.db import get_session, utcnow
from app.errors import ValidationFailed
from app.identity.models import User
from app.materials import service as materials
from app.materials.errors import MaterialTooLarge
from app.matters import catalogue
from app.matters.models import MatterVersion
from blueprints.applications.present import (
    material_download,
    material_storage,
    present,
    request_id,
    services,
)
from blueprints.applications.schemas import (
    ApplicationListArgs,
    ApplicationOut,
    DraftIn,
    FileIn,
    MaterialLicenceIn,
    ReasonIn,
    ResubmitIn,
    SignIn,
)
from blueprints.authz import citizen_required, current_principal
from blueprints.http import accepts
from blueprints.idempotency import idempotency_doc, idempotency_key
from blueprints.logins import keeping_writes
from blueprints.openapi import Blueprint
from blueprints.pagination import PageRequest, page_from, page_schema

MATERIAL_TYPES = ("application/pdf", "image/jpeg", "image/png")

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
    @blp.alt_response(409, description="ENTERPRISE_NOT_ACTIVE：企业已注销、吊销或停业")
    @blp.alt_response(
        422,
        description="FORM_INVALID（逐项中文提示）/ APPLICATION_NOT_SIGNED / IDEMPOTENCY_KEY_REUSED",
    )
    @blp.doc(parameters=[idempotency_doc("重试同一申请时带相同的值，返回第一次的办件")])
    @citizen_required
    def post(self, body: dict[str, Any]) -> Any:
        """File an application under the matter's current version, sign it with the applicant's
        handwriting and submit it: when every rule holds it is approved at once with its
        licence sealed (秒批); otherwise it is accepted for a reviewer with the reasons.
        `submit: false` keeps a draft, to be given materials, signed and submitted."""
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
                handwriting_png=body.get("handwriting_png"),
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
    @blp.alt_response(403, description="ENTERPRISE_ACCESS_DENIED：已不再代表该企业办理")
    @blp.alt_response(409, description="ILLEGAL_TRANSITION：已提交的办件不能修改")
    @citizen_required
    def put(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Replace a draft's form."""
        session = get_session()
        found = service.for_applicant(session, current_principal().id, number)
        with keeping_writes(session):
            service.update_draft(
                session,
                found,
                user=_me(),
                form=body["form"],
                now=utcnow(),
                request_id=request_id(),
            )
        session.commit()
        return present(session, found, viewer="applicant")


@blp.route("/<string:number>/signature")
class SignDraft(MethodView):
    @blp.arguments(SignIn)
    @blp.response(200, ApplicationOut)
    @blp.alt_response(403, description="IDENTITY_LEVEL_TOO_LOW：签名前须完成人脸核验")
    @blp.alt_response(404, description="APPLICATION_NOT_FOUND（含他人的办件）")
    @blp.alt_response(409, description="ILLEGAL_TRANSITION：仅草稿可签名")
    @blp.alt_response(413, description="PAYLOAD_TOO_LARGE：签名图片过大")
    @blp.alt_response(422, description="FORM_INVALID / HANDWRITING_INVALID")
    @citizen_required
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Sign the draft's application form (and, for 告知承诺 matters, the commitment letter)
        in my own name, after a face verification just now: each document carries my
        signature and the department's seal. A form changed afterwards is signed again."""
        session = get_session()
        found = service.for_applicant(session, current_principal().id, number)
        with keeping_writes(session):
            service.sign_draft(
                session,
                services(session),
                found,
                user=_me(),
                handwriting_png=body["handwriting_png"],
                now=utcnow(),
                request_id=request_id(),
            )
        session.commit()
        return present(session, found, viewer="applicant")


@blp.route("/<string:number>/submit")
class SubmitDraft(MethodView):
    @blp.response(200, ApplicationOut)
    @blp.alt_response(409, description="ILLEGAL_TRANSITION")
    @blp.alt_response(422, description="FORM_INVALID / MATERIALS_MISSING / APPLICATION_NOT_SIGNED")
    @citizen_required
    def post(self, number: str) -> dict[str, Any]:
        """Submit a signed draft (the rules decide as for a direct filing)."""
        session = get_session()
        found = service.for_submission(session, current_principal().id, number)
        with keeping_writes(session):
            loaded = service.submit(
                session,
                services(session),
                found,
                user=_me(),
                now=utcnow(),
                request_id=request_id(),
                locked=True,
            )
        # The answer is read inside the transaction: after the commit its one read would
        # open a transaction of its own (BEGIN, the read, ROLLBACK at teardown), and this is
        # the request an applicant waits on for a 秒批.
        answer = present(session, found, viewer="applicant", loaded=loaded)
        session.commit()
        return answer


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
    @blp.alt_response(413, description="PAYLOAD_TOO_LARGE：签名图片过大")
    @blp.alt_response(
        422, description="FORM_INVALID；APPLICATION_NOT_SIGNED：改过的申请表须重新签名"
    )
    @citizen_required
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Answer a request for 补正; the statutory clock resumes. A corrected form is signed
        again (`handwriting_png`), as at filing."""
        session = get_session()
        found = service.for_applicant(session, current_principal().id, number)
        with keeping_writes(session):
            service.resubmit(
                session,
                services(session),
                found,
                user=_me(),
                form=body.get("form"),
                handwriting_png=body.get("handwriting_png"),
                now=utcnow(),
                request_id=request_id(),
            )
        session.commit()
        return present(session, found, viewer="applicant")


UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
        **{kind: {"schema": {"type": "string", "format": "binary"}} for kind in MATERIAL_TYPES},
    },
}


def _still_acting(session: Session, application: Application) -> None:
    """Materials change for the enterprise: refused (audited) for a binding that ended."""
    with keeping_writes(session):
        service.check_still_acting(
            session, application, _me(), now=utcnow(), request_id=request_id()
        )


def _version_of(application: Application) -> MatterVersion:
    return catalogue.get_version(get_session(), application.matter_code, application.matter_version)


@blp.route("/<string:number>/materials/<string:material_id>")
class Material(MethodView):
    @blp.doc(requestBody=UPLOAD_BODY)
    @blp.response(200, ApplicationOut)
    @blp.alt_response(403, description="ENTERPRISE_ACCESS_DENIED：已不再代表该企业办理")
    @blp.alt_response(404, description="APPLICATION_NOT_FOUND / MATERIAL_NOT_IN_GUIDE")
    @blp.alt_response(409, description="MATERIALS_LOCKED：仅草稿、待补正或容缺待补交的材料可以提交")
    @blp.alt_response(413, description="MATERIAL_TOO_LARGE")
    @blp.alt_response(415, description="MATERIAL_TYPE_UNSUPPORTED：仅 PDF、JPEG、PNG")
    @blp.alt_response(422, description="缺少文件（multipart 字段 file）")
    @accepts("multipart/form-data", *MATERIAL_TYPES)
    @citizen_required
    def post(self, number: str, material_id: str) -> dict[str, Any]:
        """Upload one material (multipart field `file`, or the raw body): PDF, JPEG or PNG, its
        type read from the bytes; replaces an earlier upload of the same material. After 容缺受理
        the missing materials are uploaded here until the promised day."""
        session = get_session()
        found = service.for_applicant(session, current_principal().id, number)
        _still_acting(session, found)
        limit = current_app.config["MATERIAL_MAX_BYTES"]
        if request.content_length is not None and request.content_length > limit + 64 * 1024:
            raise MaterialTooLarge(limit_bytes=limit)
        filename, now = None, utcnow()
        if request.mimetype in MATERIAL_TYPES:
            data = request.get_data(cache=False)
        else:
            upload = request.files.get("file")
            if upload is None:
                raise ValidationFailed("请上传文件", fields={"file": ["缺少文件（字段名 file）"]})
            filename = upload.filename
            data = upload.read(limit + 1)
        # Before deciding whether this material may still come and whether it is the last one
        # missing (the body read first, not while holding the row): a double tap, or the sweep
        # ending the case meanwhile, waits here and then sees what the other left.
        service.lock(session, found)
        materials.attach_upload(
            session,
            material_storage(),
            found,
            _version_of(found).content,
            material_id,
            data,
            filename=filename,
            user_id=current_principal().id,
            max_bytes=limit,
            now=now,
        )
        tolerance.after_upload(session, found, user=_me(), now=now)
        session.commit()
        return present(session, found, viewer="applicant")

    @blp.response(200, description="材料文件（原样，inline）")
    @blp.alt_response(404, description="APPLICATION_NOT_FOUND / MATERIAL_NOT_FOUND")
    @citizen_required
    def get(self, number: str, material_id: str) -> Response:
        """The uploaded file, as stored."""
        session = get_session()
        found = service.for_applicant(session, current_principal().id, number)
        row, data = materials.read(session, material_storage(), found, material_id)
        return material_download(row, data)


@blp.route("/<string:number>/materials/<string:material_id>/licence")
class MaterialFromLicence(MethodView):
    @blp.arguments(MaterialLicenceIn)
    @blp.response(200, ApplicationOut)
    @blp.alt_response(
        404, description="APPLICATION_NOT_FOUND / MATERIAL_NOT_IN_GUIDE / LICENCE_NOT_FOUND"
    )
    @blp.alt_response(403, description="ENTERPRISE_ACCESS_DENIED：已不再代表该企业办理")
    @blp.alt_response(409, description="MATERIALS_LOCKED")
    @blp.alt_response(422, description="LICENCE_UNSUITABLE：证照类型不符或已失效")
    @citizen_required
    def post(self, body: dict[str, Any], number: str, material_id: str) -> dict[str, Any]:
        """免证办: a valid licence from my wallet stands in for this material."""
        session, now = get_session(), utcnow()
        found = service.for_applicant(session, current_principal().id, number)
        _still_acting(session, found)
        service.lock(session, found)  # as for an upload
        materials.attach_licence(
            session,
            found,
            _version_of(found).content,
            material_id,
            body["licence_id"],
            user_id=current_principal().id,
            now=now,
        )
        tolerance.after_upload(session, found, user=_me(), now=now)
        session.commit()
        return present(session, found, viewer="applicant")
