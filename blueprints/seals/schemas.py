"""Request and response bodies of the seals API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.seals.models import SealKind, SealStatus
from blueprints.fields import BeijingTime
from blueprints.http import MAX_ID
from blueprints.pagination import PageArgs


class SealOut(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True, metadata={"description": "印章编码"})
    name = fields.String(required=True)
    kind = fields.Enum(SealKind, by_value=True, required=True)
    purpose = fields.String(required=True)
    department_id = fields.Integer(required=True)
    status = fields.Enum(SealStatus, by_value=True, required=True)
    valid_from = BeijingTime(required=True)
    valid_until = BeijingTime(required=True)
    authorised_roles = fields.List(fields.String(), required=True)
    authorised_templates = fields.List(fields.String(), required=True)
    authorised_matters = fields.List(fields.String(), required=True)
    certificate_serial = fields.Function(lambda seal: seal.certificate.serial_hex)
    key_provider = fields.Function(lambda seal: seal.key.provider)


class SealListArgs(PageArgs):
    department_id = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "按部门筛选"},
    )
    status = fields.Enum(SealStatus, by_value=True, load_default=None)


class StatusChangeIn(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=200))


class HolderIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    id_number = fields.String(load_default="", validate=validate.Length(max=32))
    kind = fields.String(
        load_default="enterprise", validate=validate.OneOf(["enterprise", "person"])
    )


class IssueIn(Schema):
    template = fields.String(required=True, validate=validate.Length(min=1, max=32))
    holder = fields.Nested(HolderIn, required=True)
    data = fields.Dict(keys=fields.String(validate=validate.Length(max=32)), load_default=dict)
    matter = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "所办事项编码；印章只能为其授权的事项和模板用印"},
    )


class TemplateFieldOut(Schema):
    key = fields.String(required=True)
    label = fields.String(required=True)
    type = fields.String(
        required=True, metadata={"description": "text / integer / decimal / date / table"}
    )
    required = fields.Boolean(required=True)


class TemplateOut(Schema):
    key = fields.String(required=True)
    title = fields.String(required=True)
    holder_label = fields.String(required=True)
    id_label = fields.String(required=True)
    holder_kinds = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "可签发给 enterprise（统一社会信用代码）/ person（居民身份证）"},
    )
    matters = fields.List(
        fields.String(), required=True, metadata={"description": "适用事项；为空表示不限"}
    )
    personal_signature = fields.Boolean(required=True)
    fields_ = fields.List(
        fields.Nested(TemplateFieldOut), required=True, attribute="fields", data_key="fields"
    )


class SealRefOut(Schema):
    code = fields.String()
    name = fields.String()
    kind = fields.String()
    status = fields.String()


class DocumentOut(Schema):
    document_id = fields.String(required=True)
    type = fields.String(required=True)
    template = fields.String(required=True)
    number = fields.String(required=True)
    issuer = fields.String(required=True)
    seal = fields.Nested(SealRefOut, required=True)
    issued_at = BeijingTime(required=True)
    holder = fields.String(required=True, metadata={"description": "持证人（已脱敏）"})
    sha256 = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "valid / revoked / superseded"})
    status_changed_at = BeijingTime(allow_none=True)
    personal_signature = fields.Boolean(required=True)
    verify_url = fields.String(required=True)


class SignatureOut(Schema):
    field_name = fields.String()
    signer = fields.String()
    signer_organisation = fields.String()
    certificate_serial = fields.String()
    signing_time = BeijingTime(allow_none=True)
    time_source = fields.String()
    intact = fields.Boolean()
    valid = fields.Boolean()
    trusted = fields.Boolean()
    covers_whole_document = fields.Boolean()
    certification = fields.Boolean()
    modification = fields.String()
    docmdp_ok = fields.Boolean(allow_none=True)
    status = fields.String()


class VerificationOut(Schema):
    status = fields.String(
        required=True,
        metadata={
            "description": "valid / tampered / modified / untrusted / invalid / unregistered"
            " / revoked / superseded / unsigned（PDF 无数字签名）/ not_pdf（不是 PDF 文件）"
        },
    )
    signatures_status = fields.String(required=True)
    sha256 = fields.String(required=True)
    signatures = fields.List(fields.Nested(SignatureOut), required=True)
    registry = fields.Dict(required=True)
