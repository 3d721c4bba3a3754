"""Seals API: staff manage seals and issue documents; anyone verifies a document."""

from __future__ import annotations

from typing import Any

from flask import Response, g, request
from flask.views import MethodView

from app.audit.service import Actor
from app.db import get_session, utcnow
from app.identity.errors import KeepsWrites
from app.seals import errors, get_seal_context
from app.seals.context import SealContext
from app.seals.issuing import Holder, issue_document
from app.seals.lifecycle import SealActor, change_seal_status, list_seals
from app.seals.models import Seal, SealStatus
from app.seals.registry import (
    document_pdf,
    find_by_code,
    get_document,
    public_view,
    revoke_document,
)
from app.seals.templates import template_catalogue
from app.seals.verification import verify_upload
from app.security import get_cipher
from blueprints.applications.review import departments_reviewed
from blueprints.authz import ADMIN_ROLE, current_principal, public, staff_required
from blueprints.http import accepts
from blueprints.idempotency import idempotency_doc, idempotency_key
from blueprints.openapi import Blueprint
from blueprints.pagination import PageArgs, page_of, page_schema
from blueprints.seals.schemas import (
    DocumentOut,
    IssueIn,
    SealListArgs,
    SealOut,
    StatusChangeIn,
    TemplateOut,
    VerificationOut,
)

blp = Blueprint("seals", __name__, url_prefix="/seals", description="电子印章与文书核验")


def _context() -> SealContext:
    ctx = get_seal_context()
    if not ctx.has_pki():
        raise errors.PkiMissing()
    return ctx


def _get_seal(seal_id: int) -> Seal:
    seal = get_session().get(Seal, seal_id)
    if seal is None:
        raise errors.SealNotFound()
    return seal


@blp.route("")
class SealList(MethodView):
    @blp.arguments(SealListArgs, location="query")
    @blp.response(200, page_schema(SealOut))
    @blp.alt_response(403, description="不是工作人员")
    @staff_required("reviewer")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List seals (reviewers see their departments' seals, admins all)."""
        seals = list_seals(
            get_session(),
            department_id=args["department_id"],
            status=args["status"],
            within_departments=departments_reviewed(),
        )
        return page_of(seals, args)


@blp.route("/templates")
class TemplateList(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(TemplateOut))
    @blp.alt_response(403, description="不是工作人员")
    @staff_required()
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The document templates: the fields each needs and whom it may be issued to."""
        return page_of(template_catalogue(), args)


@blp.route("/<int:seal_id>/image")
class SealImage(MethodView):
    @blp.response(200, content_type="image/png")
    @blp.alt_response(404, description="印章不存在")
    @staff_required("reviewer")
    def get(self, seal_id: int) -> Response:
        """Preview the seal's image (PNG, transparent background)."""
        seal = _get_seal(seal_id)
        # As in the list: another department's seal is not found. Its image is a clean copy of
        # that department's official seal, of no use to another department's reviewers.
        scope = departments_reviewed()
        if scope is not None and seal.department_id not in scope:
            raise errors.SealNotFound()
        return Response(
            seal.image_png, mimetype="image/png", headers={"Cache-Control": "private, max-age=300"}
        )


def _status_view(seal_id: int, status: SealStatus, body: dict[str, Any]) -> Seal:
    session = get_session()
    seal = change_seal_status(
        session,
        _context(),
        _get_seal(seal_id),
        status,
        actor=Actor("staff", current_principal().id),
        now=utcnow(),
        reason=body["reason"],
    )
    session.commit()
    return seal


@blp.route("/<int:seal_id>/suspend")
class SealSuspend(MethodView):
    @blp.arguments(StatusChangeIn)
    @blp.response(200, SealOut)
    @blp.alt_response(409, description="印章当前状态不允许停用")
    @staff_required(ADMIN_ROLE)
    def post(self, body: dict[str, Any], seal_id: int) -> Seal:
        """Suspend a seal (admin); it cannot sign until reactivated."""
        return _status_view(seal_id, SealStatus.SUSPENDED, body)


@blp.route("/<int:seal_id>/reactivate")
class SealReactivate(MethodView):
    @blp.arguments(StatusChangeIn)
    @blp.response(200, SealOut)
    @blp.alt_response(409, description="印章当前状态不允许启用")
    @staff_required(ADMIN_ROLE)
    def post(self, body: dict[str, Any], seal_id: int) -> Seal:
        """Reactivate a suspended seal (admin)."""
        return _status_view(seal_id, SealStatus.ACTIVE, body)


@blp.route("/<int:seal_id>/revoke")
class SealRevoke(MethodView):
    @blp.arguments(StatusChangeIn)
    @blp.response(200, SealOut)
    @blp.alt_response(409, description="印章已注销")
    @staff_required(ADMIN_ROLE)
    def post(self, body: dict[str, Any], seal_id: int) -> Seal:
        """Revoke a seal for good (admin): its certificate goes on the CRL."""
        return _status_view(seal_id, SealStatus.REVOKED, body)


@blp.route("/<int:seal_id>/documents")
class SealIssue(MethodView):
    @blp.arguments(IssueIn)
    @blp.response(201, DocumentOut)
    @blp.alt_response(403, description="无权使用该印章（已记录）")
    @blp.alt_response(409, description="印章已停用、注销或过期")
    @blp.alt_response(
        422, description="DOCUMENT_DATA_INVALID（字段或证件号码有误）、IDEMPOTENCY_KEY_REUSED 等"
    )
    @blp.doc(
        parameters=[idempotency_doc("重试同一请求时带相同的值，返回第一次签发的文书，不会重复签发")]
    )
    @staff_required("reviewer")
    def post(self, body: dict[str, Any], seal_id: int) -> dict[str, Any]:
        """Issue a sealed document under this seal (staff authorised for it; a retry with the
        same Idempotency-Key returns the first document)."""
        session = get_session()
        ctx = _context()
        principal = current_principal()
        actor = SealActor("staff", principal.id, principal.roles, principal.scopes)
        holder = Holder(**body["holder"])
        try:
            document = issue_document(
                session,
                ctx,
                seal=_get_seal(seal_id),
                template=body["template"],
                holder=holder,
                data=body["data"],
                actor=actor,
                now=utcnow(),
                matter=body["matter"],
                cipher=get_cipher(),
                request_id=g.get("request_id"),
                idempotency_key=idempotency_key(),
            )
        except KeepsWrites:
            session.commit()  # the refusal and its audit entry must stay
            raise
        session.commit()
        return public_view(document, ctx)


@blp.route("/documents/<string:public_id>/revoke")
class DocumentRevoke(MethodView):
    @blp.arguments(StatusChangeIn)
    @blp.response(200, DocumentOut)
    @blp.alt_response(404, description="文书不存在")
    @staff_required(ADMIN_ROLE)
    def post(self, body: dict[str, Any], public_id: str) -> dict[str, Any]:
        """Revoke an issued document (admin)."""
        session = get_session()
        document = revoke_document(
            session,
            get_document(session, public_id),
            actor=Actor("staff", current_principal().id),
            now=utcnow(),
            reason=body["reason"],
        )
        session.commit()
        return public_view(document, _context())


@blp.route("/verify/<string:code>")
class VerifyByCode(MethodView):
    @blp.response(200, DocumentOut)
    @blp.alt_response(404, description="核验码无效或文书不存在")
    @public
    def get(self, code: str) -> dict[str, Any]:
        """What the registry says about the document a verification code names."""
        ctx = _context()
        return public_view(find_by_code(get_session(), ctx, code), ctx)


@blp.route("/verify/<string:code>/pdf")
class DocumentDownload(MethodView):
    @blp.response(200, content_type="application/pdf")
    @blp.alt_response(404, description="核验码无效或文书不存在")
    @public
    def get(self, code: str) -> Response:
        """The signed PDF the code names (the code is the capability)."""
        ctx = _context()
        document = find_by_code(get_session(), ctx, code)
        try:
            data = document_pdf(ctx, document)
        except OSError:
            raise errors.DocumentNotFound() from None
        return Response(data, mimetype="application/pdf")


# Not a marshmallow body: the file is read as bytes, whichever of the two ways it comes.
VERIFY_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
        "application/pdf": {"schema": {"type": "string", "format": "binary"}},
    },
}


@blp.route("/verify")
class VerifyUpload(MethodView):
    @blp.doc(requestBody=VERIFY_UPLOAD_BODY)
    @blp.response(200, VerificationOut)
    @blp.alt_response(413, description="文件过大")
    @blp.alt_response(422, description="缺少文件（multipart 字段 file）")
    @accepts("multipart/form-data", "application/pdf")
    @public
    def post(self) -> dict[str, Any]:
        """Upload a PDF (multipart field `file`, or the raw body as application/pdf) and
        validate its signatures against our trust roots and the registry."""
        limit = get_seal_context().max_upload_bytes
        if request.content_length is not None and request.content_length > limit + 64 * 1024:
            raise errors.UploadTooLarge(limit_bytes=limit)
        if request.mimetype == "application/pdf":
            data = request.get_data(cache=False)
        else:
            upload = request.files.get("file")
            if upload is None:
                raise errors.UploadNotPdf(fields={"file": ["请上传PDF文件（字段名 file）"]})
            data = upload.read(limit + 1)
        return verify_upload(get_session(), _context(), data, now=utcnow())
