"""Bodies of applications: filing, the applicant's and the reviewer's view, decisions."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from app.applications.models import Application, ApplicationEvent, ApplicationStatus
from app.applications.workflow import load_all
from app.licences.models import Licence
from app.seals.signatures import MAX_HANDWRITING_BYTES
from blueprints.fields import Base64Bytes, BeijingTime, CalendarDate
from blueprints.pagination import PageArgs

STATUSES = [s.value for s in ApplicationStatus]
REASON = fields.String(
    validate=validate.Length(min=1, max=500), metadata={"description": "理由（不超过500字）"}
)


class FileIn(Schema):
    matter_code = fields.String(
        required=True, validate=validate.Length(min=3, max=64), metadata={"description": "事项编码"}
    )
    form = fields.Dict(
        required=True, metadata={"description": "申请表，须符合事项当前版本的 form（JSON Schema）"}
    )
    enterprise_id = fields.Integer(
        allow_none=True,
        validate=validate.Range(min=1, max=2**53),
        metadata={"description": "以企业名义申请时：已绑定的企业（法定代表人或经办人）"},
    )
    submit = fields.Boolean(
        load_default=True, metadata={"description": "false 时仅保存为草稿，稍后签名、提交"}
    )
    handwriting_png = Base64Bytes(
        max_bytes=MAX_HANDWRITING_BYTES,
        metadata={"description": "直接提交时必填：申请人手写签名（PNG，base64），须近期人脸核验"},
    )


class SignIn(Schema):
    handwriting_png = Base64Bytes(
        required=True,
        max_bytes=MAX_HANDWRITING_BYTES,
        metadata={"description": "申请人手写签名（PNG，base64，白底黑字）"},
    )


class DraftIn(Schema):
    form = fields.Dict(required=True)


class ReasonIn(Schema):
    reason = REASON


class RequiredReasonIn(Schema):
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "理由（一次性告知全部需补正的内容，或不予许可的理由）"},
    )


class ResubmitIn(Schema):
    form = fields.Dict(metadata={"description": "补正后的申请表（不改则不传）"})
    handwriting_png = Base64Bytes(
        max_bytes=MAX_HANDWRITING_BYTES,
        metadata={"description": "申请表改过时，申请人重新手写签名（PNG，base64）"},
    )


class ReviewTransferIn(Schema):
    to_staff_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**53))
    reason = REASON


class ApplicationListArgs(PageArgs):
    pass


class QueueArgs(PageArgs):
    status = fields.String(
        validate=validate.OneOf(["accepted", "under_review", "supplement_requested"]),
        metadata={"description": "只看某一状态（默认全部待办）"},
    )
    mine = fields.Boolean(load_default=False, metadata={"description": "只看我认领的"})


class StatisticsArgs(Schema):
    start = CalendarDate(
        data_key="from", metadata={"description": "提交日期起（含），缺省为 30 天前"}
    )
    end = CalendarDate(data_key="to", metadata={"description": "提交日期止（含），缺省为今天"})


class MatterFiguresOut(Schema):
    matter_code = fields.String(required=True)
    submitted = fields.Integer(required=True)
    decided = fields.Integer(required=True)
    approved_instantly = fields.Integer(required=True, metadata={"description": "秒批件数"})
    approved_by_reviewer = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    withdrawn = fields.Integer(required=True)
    open = fields.Integer(required=True, metadata={"description": "在办"})
    overdue = fields.Integer(required=True, metadata={"description": "超法定时限"})
    instant_share = fields.Float(allow_none=True, metadata={"description": "秒批占办结的比例"})
    median_hours_to_decision = fields.Float(allow_none=True)


class StatisticsOut(Schema):
    start = fields.Date(data_key="from", required=True)
    end = fields.Date(data_key="to", required=True)
    items = fields.List(fields.Nested(MatterFiguresOut), required=True)


class RuleOutcomeOut(Schema):
    id = fields.String(required=True)
    message = fields.String(required=True)
    basis = fields.String(required=True)
    result = fields.String(
        required=True,
        validate=validate.OneOf(["P", "F", "U"]),
        metadata={"description": "P 符合，F 不符合，U 信息不足（转人工）"},
    )
    result_label = fields.String(required=True)
    explanation = fields.String(required=True, metadata={"example": "广告面积 12㎡ ≤ 20㎡ ✓"})
    inputs = fields.Dict(required=True, metadata={"description": "规则读取的数据及其取值"})


class DecisionOut(Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(["approve", "review"]))
    results = fields.List(fields.Nested(RuleOutcomeOut), required=True)
    reasons = fields.List(fields.String(), required=True, metadata={"description": "转人工的原因"})
    unavailable = fields.List(
        fields.String(), required=True, metadata={"description": "未能查询的数据共享接口"}
    )
    facts = fields.Dict(required=True)
    parameters = fields.Dict(required=True)


class EventOut(Schema):
    action = fields.String(required=True)
    from_status = fields.String(required=True)
    to_status = fields.String(required=True)
    actor_kind = fields.String(
        required=True, validate=validate.OneOf(["applicant", "reviewer", "system"])
    )
    reason = fields.String(allow_none=True)
    at = BeijingTime(required=True)


class LicenceBriefOut(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True)
    title = fields.String(required=True)
    document_code = fields.String(
        required=True, metadata={"description": "核验码：/seals/verify/{code}"}
    )


class MaterialOut(Schema):
    material_id = fields.String(required=True)
    name = fields.String(required=True)
    source = fields.String(required=True, validate=validate.OneOf(["upload", "licence"]))
    content_type = fields.String(allow_none=True)
    size_bytes = fields.Integer(allow_none=True)
    sha256 = fields.String(allow_none=True)
    licence_id = fields.Integer(allow_none=True, metadata={"description": "免证办：卡包中的证照"})
    added_at = BeijingTime(required=True)


class MaterialLicenceIn(Schema):
    licence_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**53))


class SignedDocumentOut(Schema):
    title = fields.String(required=True)
    document_code = fields.String(
        required=True, metadata={"description": "文书核验码（公开核验接口可查验签名与印章）"}
    )


class ApplicantSignatureOut(Schema):
    signed_at = BeijingTime(required=True)
    current = fields.Boolean(
        required=True, metadata={"description": "false：签名后申请表已修改，须重新签名"}
    )
    form_document = fields.Nested(SignedDocumentOut, required=True)
    commitment_document = fields.Nested(SignedDocumentOut, allow_none=True)


class ApplicationOut(Schema):
    number = fields.String(required=True, metadata={"description": "办件编号"})
    matter_code = fields.String(required=True)
    matter_version = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    status_label = fields.String(required=True)
    enterprise_id = fields.Integer(allow_none=True)
    acting_as = fields.String(
        required=True, validate=validate.OneOf(["citizen", "legal_representative", "agent"])
    )
    form = fields.Dict(required=True)
    decision = fields.Nested(DecisionOut, allow_none=True)
    submitted_at = BeijingTime(allow_none=True)
    decided_at = BeijingTime(allow_none=True)
    statutory_due = BeijingTime(allow_none=True, metadata={"description": "法定办结时限"})
    promised_due = BeijingTime(allow_none=True, metadata={"description": "承诺办结时限"})
    overdue = fields.Boolean(required=True)
    supply_due = BeijingTime(
        allow_none=True,
        metadata={"description": "容缺受理：缺少的材料须在此时间前补交，逾期终止办理"},
    )
    assignee_staff_id = fields.Integer(allow_none=True)
    licence = fields.Nested(LicenceBriefOut, allow_none=True)
    actions = fields.List(
        fields.String(), required=True, metadata={"description": "当前可进行的操作"}
    )
    materials = fields.List(fields.Nested(MaterialOut), required=True)
    signature = fields.Nested(ApplicantSignatureOut, allow_none=True)
    history = fields.List(fields.Nested(EventOut), required=True)


class ReplayOut(Schema):
    same = fields.Boolean(required=True, metadata={"description": "重放结果与保存的决定一致"})
    stored = fields.Nested(DecisionOut, required=True)
    replayed = fields.Nested(DecisionOut, required=True)


def application_out(
    application: Application,
    *,
    materials: list[dict[str, Any]],
    events: list[ApplicationEvent],
    licence: Licence | None,
    document_code: str | None,
    signature: dict[str, Any] | None,
    viewer: str,
) -> dict[str, Any]:
    flow = load_all()[(application.workflow, application.workflow_version)]
    return {
        "number": application.number,
        "matter_code": application.matter_code,
        "matter_version": application.matter_version,
        "status": application.status,
        "status_label": flow.states[application.status].label,
        "enterprise_id": application.enterprise_id,
        "acting_as": application.acting_as,
        "form": application.form,
        "decision": application.decision,
        "submitted_at": application.submitted_at,
        "decided_at": application.decided_at,
        "statutory_due": application.statutory_due,
        "promised_due": application.promised_due,
        "overdue": application.overdue,
        "supply_due": application.supply_due,
        "assignee_staff_id": application.assignee_staff_id,
        "licence": (
            {
                "id": licence.id,
                "number": licence.number,
                "title": licence.title,
                "document_code": document_code,
            }
            if licence is not None
            else None
        ),
        "actions": [
            action
            for action in flow.actions(application.status, viewer)
            if action != "supply" or application.supply_due is not None
        ]
        + (["edit"] if viewer == "applicant" and application.status == "draft" else []),
        "materials": materials,
        "signature": signature,
        "history": events,
    }
