"""Request and response bodies of policies, profiles, the feed and the calculator."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate, validates_schema
from marshmallow.exceptions import ValidationError

from app.policies import profiles, reference
from app.policies.criteria import MAX_CRITERIA
from app.policies.criteria_schema import CRITERIA_LIST, EXPRESSION_REF
from app.policies.models import BenefitKind, Delivery, PolicyStatus
from blueprints.fields import BeijingTime
from blueprints.pagination import PageArgs, page_schema

_KINDS = [k.value for k in BenefitKind]
_DELIVERIES = [d.value for d in Delivery]
_SIZES = [s.value for s in reference.SizeClass]
_BIG = validate.Range(min=0, max=10**14)
_HEADCOUNT = validate.Range(min=0, max=profiles.MAX_EMPLOYEES)


class CriteriaFormIn(Schema):
    """The structured criteria form (every field optional; at least one needed)."""

    industry_include = fields.List(
        fields.String(validate=validate.Length(1, 5)), validate=validate.Length(max=50)
    )
    industry_exclude = fields.List(
        fields.String(validate=validate.Length(1, 5)), validate=validate.Length(max=50)
    )
    size_classes = fields.List(fields.String(validate=validate.OneOf(_SIZES)))
    towns = fields.List(fields.String(validate=validate.OneOf(reference.TOWNS)))
    tags_all = fields.List(fields.String(validate=validate.OneOf(reference.TAGS)))
    tags_any = fields.List(fields.String(validate=validate.OneOf(reference.TAGS)))
    tags_none = fields.List(fields.String(validate=validate.OneOf(reference.TAGS)))
    established_before = fields.Date(metadata={"description": "成立日期不晚于（含）"})
    established_after = fields.Date(metadata={"description": "成立日期不早于（含）"})
    employees_min = fields.Integer(validate=_HEADCOUNT)
    employees_max = fields.Integer(validate=_HEADCOUNT)
    revenue_min_yuan = fields.Integer(validate=_BIG)
    revenue_max_yuan = fields.Integer(validate=_BIG)
    article = fields.String(validate=validate.Length(max=64), metadata={"description": "条款"})


class _PolicyFields(Schema):
    title = fields.String(validate=validate.Length(1, 128))
    doc_number = fields.String(validate=validate.Length(1, 64), metadata={"description": "文号"})
    summary = fields.String(validate=validate.Length(1, 4000))
    source_url = fields.URL(allow_none=True, validate=validate.Length(max=512))
    benefit_kind = fields.String(validate=validate.OneOf(_KINDS))
    benefit_amount_yuan = fields.Integer(allow_none=True, validate=_BIG)
    delivery = fields.String(
        validate=validate.OneOf(_DELIVERIES),
        metadata={"description": "automatic 免申即享 | application 申请兑现"},
    )
    item_code = fields.String(allow_none=True, validate=validate.Length(max=64))
    expires_on = fields.Date(allow_none=True, metadata={"description": "有效期至（含）"})
    criteria = fields.List(
        fields.Dict(),
        allow_none=True,
        validate=validate.Length(max=MAX_CRITERIA),
        metadata={"openapi_property": CRITERIA_LIST},
    )
    criteria_form = fields.Nested(CriteriaFormIn, allow_none=True)


class PolicyCreateIn(_PolicyFields):
    department_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**62))

    @validates_schema
    def _required(self, data: dict[str, Any], **_: Any) -> None:
        missing = [
            k
            for k in ("title", "doc_number", "summary", "benefit_kind", "delivery")
            if k not in data
        ]
        if missing:
            raise ValidationError({k: ["缺少必填项"] for k in missing})


class PolicyEditIn(_PolicyFields):
    pass


class WithdrawIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(1, 255))


class PolicyListArgs(PageArgs):
    department_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**62))
    status = fields.String(validate=validate.OneOf([s.value for s in PolicyStatus]))


class CriterionOut(Schema):
    id = fields.String()
    label = fields.String()
    rule = fields.Dict(metadata={"openapi_property": EXPRESSION_REF})
    source = fields.Dict()
    hint = fields.String()


class PolicySummaryOut(Schema):
    id = fields.Integer()
    department_id = fields.Integer()
    title = fields.String()
    doc_number = fields.String()
    summary = fields.String()
    source_url = fields.String(allow_none=True)
    benefit_kind = fields.String()
    benefit_amount_yuan = fields.Integer(allow_none=True)
    delivery = fields.String()
    item_code = fields.String(allow_none=True)
    status = fields.String()
    expires_on = fields.Date(allow_none=True)
    published_at = BeijingTime(allow_none=True)
    criteria_version = fields.Integer()


class PolicyOut(PolicySummaryOut):
    criteria = fields.List(fields.Nested(CriterionOut))


class PreviewOut(Schema):
    eligible = fields.Integer()
    maybe = fields.Integer()
    near_misses = fields.Dict(keys=fields.String(), values=fields.Integer())


class PublishOut(Schema):
    policy = fields.Nested(PolicyOut)
    matched = fields.Integer()


class ReachOut(Schema):
    matched = fields.Integer()
    eligible = fields.Integer()
    pushed = fields.Integer()
    delivered = fields.Integer()
    waiting = fields.Integer()
    skipped = fields.Integer()
    failed = fields.Integer()
    in_doubt = fields.Integer()
    read = fields.Integer()
    applied = fields.Integer()


class ProfileIn(Schema):
    """Self-declared fields; town and establishment date come from the registry."""

    industry_code = fields.String(allow_none=True, validate=validate.Length(1, 5))
    employees = fields.Integer(allow_none=True, strict=True, validate=_HEADCOUNT)
    revenue_yuan = fields.Integer(allow_none=True, strict=True, validate=_BIG)
    tags = fields.List(fields.String(validate=validate.OneOf(reference.TAGS)), allow_none=True)


class ProfileOut(Schema):
    enterprise_id = fields.Integer()
    industry_code = fields.String(allow_none=True)
    industry = fields.Function(
        lambda p: reference.industry_label(p.industry_code) if p.industry_code else None
    )
    town = fields.String(allow_none=True)
    established_on = fields.Date(allow_none=True)
    employees = fields.Integer(allow_none=True)
    revenue_yuan = fields.Integer(allow_none=True)
    size_class = fields.String(allow_none=True)
    size_label = fields.Function(
        lambda p: reference.SizeClass(p.size_class).label if p.size_class else None
    )
    tags = fields.Function(lambda p: reference.bits_to_tags(p.tag_bits))
    pending_verification = fields.Function(
        profiles.pending_facts,
        metadata={
            "description": "企业自报、尚待核实的信息（字段名，或 tag:标签）；"
            "免申即享与资金类政策不据此认定"
        },
    )
    fact_sources = fields.Dict(
        metadata={"description": "各项信息的来源（registry/import/self/officer/staff）与时间"}
    )
    updated_at = BeijingTime()


class ProfileChangeOut(Schema):
    id = fields.Integer()
    source = fields.String()
    changes = fields.Dict()
    created_at = BeijingTime()


class ReasonOut(Schema):
    criterion = fields.String()
    label = fields.String()
    result = fields.String(metadata={"description": "pass | fail | unknown"})
    result_label = fields.String()
    pending_verification = fields.Boolean(
        metadata={"description": "仅凭企业自报信息可判断，待核实"}
    )
    source = fields.Dict()
    hint = fields.String()


class FeedArgs(PageArgs):
    benefit_kind = fields.String(validate=validate.OneOf(_KINDS))
    q = fields.String(validate=validate.Length(max=64), metadata={"description": "关键词"})
    unread = fields.Boolean(load_default=False)
    favourite = fields.Boolean(load_default=False)


class FeedItemOut(Schema):
    policy = fields.Nested(PolicySummaryOut)
    status = fields.Function(lambda item: item.match.status)
    read = fields.Boolean()
    favourite = fields.Boolean()
    verdict = fields.String()
    reasons = fields.List(fields.Nested(ReasonOut))


FeedOut = page_schema(FeedItemOut, unread=fields.Integer(required=True))


class FeedMarkIn(Schema):
    read = fields.Boolean()
    favourite = fields.Boolean()


class FeedMarkOut(Schema):
    policy_id = fields.Integer()
    read = fields.Function(lambda m: m.read_at is not None)
    favourite = fields.Boolean()


class PolicyDetailOut(Schema):
    policy = fields.Nested(PolicySummaryOut)
    status = fields.String()
    verdict = fields.String()
    reasons = fields.List(fields.Nested(ReasonOut))


class NearMissOut(Schema):
    policy_id = fields.Integer()
    title = fields.String()
    criterion = fields.String()
    label = fields.String()
    hint = fields.String()
    source = fields.Dict()


class CalculatorIn(Schema):
    """A profile a visitor types in; nothing is stored."""

    industry_code = fields.String(allow_none=True, validate=validate.Length(1, 5))
    town = fields.String(allow_none=True, validate=validate.OneOf(reference.TOWNS))
    established_on = fields.Date(allow_none=True)
    employees = fields.Integer(allow_none=True, strict=True, validate=_HEADCOUNT)
    revenue_yuan = fields.Integer(allow_none=True, strict=True, validate=_BIG)
    tags = fields.List(fields.String(validate=validate.OneOf(reference.TAGS)), allow_none=True)


class CalculatorEntryOut(Schema):
    policy_id = fields.Integer()
    title = fields.String()
    doc_number = fields.String()
    benefit_kind = fields.String()
    benefit_amount_yuan = fields.Integer(allow_none=True)
    delivery = fields.String()
    verdict = fields.String()
    reasons = fields.List(fields.Nested(ReasonOut))


class CalculatorOut(Schema):
    size_class = fields.String(allow_none=True)
    eligible = fields.List(fields.Nested(CalculatorEntryOut))
    maybe = fields.List(fields.Nested(CalculatorEntryOut))
    near_misses = fields.List(fields.Nested(NearMissOut))


class AccountIn(Schema):
    bank_name = fields.String(required=True, validate=validate.Length(1, 64))
    account_name = fields.String(required=True, validate=validate.Length(1, 128))
    account_number = fields.String(required=True, validate=validate.Length(8, 40))


class AccountOut(Schema):
    bank_name = fields.String()
    account_name = fields.String()
    account_number = fields.String(attribute="account_number_masked")
    confirmed_at = BeijingTime()
    verified_by = fields.String(
        metadata={"description": "户名核验方式：exact_name 与登记名称一致 / bank_service 银行核验"}
    )
    frozen = fields.Boolean(
        attribute="is_frozen", metadata={"description": "已冻结：法定代表人变更后须重新确认"}
    )
    frozen_reason = fields.String(allow_none=True)


class OptOutOut(Schema):
    opted_out = fields.Boolean()


class FactReviewIn(Schema):
    fact = fields.String(
        required=True,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "待核实的信息：字段名（employees 等）或 tag:标签"},
    )
    decision = fields.String(required=True, validate=validate.OneOf(["confirm", "reject"]))
    reason = fields.String(load_default="", validate=validate.Length(max=200))


class PendingFactsOut(Schema):
    enterprise_id = fields.Integer(required=True)
    uscc = fields.String(required=True)
    name = fields.String(required=True)
    facts = fields.List(fields.String(), required=True)
    updated_at = BeijingTime(required=True)
