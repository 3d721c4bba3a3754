"""The criteria language as JSON Schema, for the OpenAPI document and for clients.

It states the shape `criteria.validate` and `criteria.parse_criteria` accept: which operators,
how many arguments, which fields, which tags. What a schema cannot state is checked only by
the server: that a comparison's first argument is the field and the second a value of the
field's type, the known industry codes and towns, ranges that are not empty, depth and size.
The schema is never looser in shape nor stricter than the server (a test holds both to it).
"""

from __future__ import annotations

from typing import Any

from app.policies import reference
from app.policies.criteria import COMPARISONS, FACT_SOURCES, FIELDS, MAX_CRITERIA

EXPRESSION = "CriteriaExpression"
CRITERION = "PolicyCriterion"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _operator(name: str, argument: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": [name],
        "additionalProperties": False,
        "properties": {name: argument},
    }


def _arguments(count: int, items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "minItems": count, "maxItems": count, "items": items}


FIELD_REFERENCE: dict[str, Any] = {
    "type": "object",
    "description": "字段引用",
    "required": ["var"],
    "additionalProperties": False,
    "properties": {"var": {"type": "string", "enum": sorted(FIELDS)}},
}
VALUE: dict[str, Any] = {
    "description": "取值：文本字段为文本，成立日期为 YYYY-MM-DD，人数与金额为非负整数",
    "anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0, "maximum": 10**15 - 1}],
}


def expression_schema(expression_ref: dict[str, str]) -> dict[str, Any]:
    """One expression; `expression_ref` points back at this schema (it is recursive)."""
    branches = [
        _operator(
            "and", {"type": "array", "minItems": 1, "items": expression_ref}, "全部子条件成立"
        ),
        _operator(
            "or", {"type": "array", "minItems": 1, "items": expression_ref}, "任一子条件成立"
        ),
        _operator(
            "not",
            {
                "anyOf": [
                    expression_ref,
                    {"type": "array", "minItems": 1, "maxItems": 1, "items": expression_ref},
                ]
            },
            "子条件不成立",
        ),
        *(
            _operator(op, _arguments(2, {"anyOf": [FIELD_REFERENCE, VALUE]}), f"[字段, 值]：{op}")
            for op in COMPARISONS
        ),
        _operator(
            "between",
            _arguments(3, {"anyOf": [FIELD_REFERENCE, VALUE]}),
            "[字段, 下限, 上限]，两端包含；不用于文本字段",
        ),
        _operator(
            "in",
            _arguments(
                2, {"anyOf": [FIELD_REFERENCE, {"type": "array", "minItems": 1, "items": VALUE}]}
            ),
            "[字段, 取值列表]",
        ),
        _operator(
            "industry_prefix",
            {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "minItems": 1, "items": {"type": "string"}},
                ]
            },
            "GB/T 4754-2017 行业代码前缀（门类字母、大类、中类或小类），一个或多个",
        ),
        _operator("has_tag", {"type": "string", "enum": list(reference.TAGS)}, "具有该企业标签"),
    ]
    return {
        "description": "政策适用条件表达式：只含一个运算符的对象，可嵌套（最多8层、200个节点）",
        "oneOf": branches,
    }


def criterion_schema(expression_ref: dict[str, str]) -> dict[str, Any]:
    """One labelled criterion of a policy."""
    text = {"type": "string", "nullable": True}
    return {
        "type": "object",
        "required": ["label", "rule"],
        "additionalProperties": False,
        "properties": {
            "id": {**text, "maxLength": 32, "description": "条件编号，缺省为 c1、c2…"},
            "label": {"type": "string", "minLength": 1, "maxLength": 64, "description": "中文说明"},
            "rule": expression_ref,
            "source": {
                "type": "object",
                "nullable": True,
                "additionalProperties": False,
                "properties": {
                    "doc": {**text, "maxLength": 128, "description": "文号，缺省为政策文号"},
                    "article": {**text, "maxLength": 128, "description": "条款"},
                },
            },
            "hint": {**text, "maxLength": 128, "description": "只差此条时给企业的提示"},
            "facts": {
                "type": "string",
                "nullable": True,
                "enum": [*FACT_SOURCES, None],
                "description": "any：含企业自报信息；authoritative：只认权威来源",
            },
        },
    }


def components() -> dict[str, dict[str, Any]]:
    """The OpenAPI components: the recursive expression and the criterion."""
    ref = _ref(EXPRESSION)
    return {EXPRESSION: expression_schema(ref), CRITERION: criterion_schema(ref)}


EXPRESSION_REF = _ref(EXPRESSION)
CRITERIA_LIST: dict[str, Any] = {
    "type": "array",
    "nullable": True,
    "maxItems": MAX_CRITERIA,
    "items": _ref(CRITERION),
    "description": "适用条件列表，须全部成立",
}
