"""Bodies of the matter catalogue: search arguments, summaries, a version, publishing."""

from __future__ import annotations

import copy
from typing import Any

from marshmallow import Schema, fields, validate

from app.matters.catalogue import APPLICANTS, FLAGS, KINDS, MATTER_FILE_SCHEMA
from app.matters.models import Matter, MatterVersion
from blueprints.fields import BeijingTime
from blueprints.pagination import PageArgs


def _openapi(node: Any) -> Any:
    """A piece of MATTER_FILE_SCHEMA in OpenAPI 3.0 terms (a null type becomes `nullable`)."""
    if isinstance(node, list):
        return [_openapi(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _openapi(value) for key, value in node.items()}
    kinds = node.get("type")
    if isinstance(kinds, list) and "null" in kinds:
        (out["type"],) = [kind for kind in kinds if kind != "null"]
        out["nullable"] = True
    return out


def _part(name: str) -> dict[str, Any]:
    return _openapi(copy.deepcopy(MATTER_FILE_SCHEMA["properties"][name]))


class MatterSearchArgs(PageArgs):
    department = fields.String(
        validate=validate.Length(min=1, max=32), metadata={"description": "部门编码，如 PY-QXJ"}
    )
    flag = fields.String(validate=validate.OneOf(FLAGS), metadata={"description": "事项标识"})
    kind = fields.String(validate=validate.OneOf(KINDS), metadata={"description": "事项类型"})
    applicant = fields.String(
        validate=validate.OneOf(["citizen", "enterprise"]),
        metadata={"description": "可办理的申请人：citizen 个人，enterprise 企业"},
    )
    q = fields.String(
        validate=validate.Length(min=1, max=64), metadata={"description": "名称或编码关键字"}
    )


class MatterSummaryOut(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    department_code = fields.String(required=True)
    department_name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    applicant = fields.String(required=True, validate=validate.OneOf(APPLICANTS))
    flags = fields.List(fields.String(validate=validate.OneOf(FLAGS)), required=True)
    current_version = fields.Integer(required=True)


class MatterVersionOut(Schema):
    code = fields.String(required=True)
    version = fields.Integer(required=True)
    current = fields.Boolean(required=True, metadata={"description": "是否为当前版本"})
    published_at = BeijingTime(required=True)
    content = fields.Dict(
        required=True,
        metadata={"description": "事项定义：guide 指南、form 申请表、limits、rules 规则、licence"},
    )


class MatterPublishIn(Schema):
    """A matter definition as in data/matters (without `version`: the next one is assigned)."""

    code = fields.String(required=True, metadata={"openapi_property": _part("code")})
    name = fields.String(required=True, metadata={"openapi_property": _part("name")})
    department = fields.String(required=True, metadata={"openapi_property": _part("department")})
    kind = fields.String(required=True, metadata={"openapi_property": _part("kind")})
    applicant = fields.String(required=True, metadata={"openapi_property": _part("applicant")})
    limits = fields.Dict(required=True, metadata={"openapi_property": _part("limits")})
    flags = fields.List(
        fields.String(), required=True, metadata={"openapi_property": _part("flags")}
    )
    guide = fields.Dict(required=True, metadata={"openapi_property": _part("guide")})
    form = fields.Dict(
        required=True, metadata={"description": "申请表的 JSON Schema（type 须为 object）"}
    )
    licence = fields.Dict(required=True, metadata={"openapi_property": _part("licence")})
    commitment = fields.Dict(metadata={"openapi_property": _part("commitment")})
    rules = fields.Dict(
        metadata={
            "description": "审批规则：lookups 数据共享接口、parameters 可调参数、rules 规则"
            "（统一规则语言）、tests 测试用例；测试用例不全部通过的版本不能发布"
        }
    )


class ParameterIn(Schema):
    value = fields.Raw(
        required=True,
        metadata={"description": "新取值：数值、整数、文本、日期或文本列表，依参数类型"},
    )


class ParameterOut(Schema):
    name = fields.String(required=True)
    label = fields.String(required=True)
    kind = fields.String(
        required=True,
        validate=validate.OneOf(["number", "integer", "text", "date", "boolean", "list"]),
    )
    unit = fields.String(required=True)
    value = fields.Raw(required=True)
    default = fields.Raw(required=True)


class ParametersOut(Schema):
    items = fields.List(fields.Nested(ParameterOut), required=True)


def summary(matter: Matter, department_code: str, department_name: str) -> dict[str, Any]:
    return {
        "code": matter.code,
        "name": matter.name,
        "department_code": department_code,
        "department_name": department_name,
        "kind": matter.kind,
        "applicant": matter.applicant,
        "flags": matter.flags,
        "current_version": matter.current_version,
    }


def version_out(code: str, version: MatterVersion, current: int) -> dict[str, Any]:
    return {
        "code": code,
        "version": version.version,
        "current": version.version == current,
        "published_at": version.published_at,
        "content": version.content,
    }


class WorkflowStateOut(Schema):
    name = fields.String(required=True)
    label = fields.String(required=True)
    final = fields.Boolean(required=True)
    clock = fields.String(
        required=True,
        validate=validate.OneOf(["none", "running", "paused"]),
        metadata={"description": "该状态下法定时限是否计时：running 计时，paused 暂停（补正）"},
    )


class WorkflowTransitionOut(Schema):
    action = fields.String(required=True)
    source = fields.String(required=True, data_key="from")
    target = fields.String(required=True, data_key="to")
    by = fields.String(required=True, validate=validate.OneOf(["applicant", "reviewer", "system"]))
    label = fields.String(required=True)
    reason_required = fields.Boolean(required=True)


class WorkflowOut(Schema):
    name = fields.String(required=True)
    version = fields.Integer(required=True)
    title = fields.String(required=True)
    initial = fields.String(required=True)
    states = fields.List(fields.Nested(WorkflowStateOut), required=True)
    transitions = fields.List(fields.Nested(WorkflowTransitionOut), required=True)
    mermaid = fields.String(required=True, metadata={"description": "Mermaid 状态图源码"})
