"""Application forms: each matter version's form is a JSON Schema, checked with jsonschema-rs.

The applicant sees one Chinese message per field at fault, named by its path in the form
("site.area_m2"), using the field's `title` from the schema where it has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema_rs

from app.matters.errors import FormInvalid

# The kinds of failure an applicant can cause, in their words.
_MESSAGES = {
    "Required": "{field}为必填项",
    "Type": "{field}的类型不正确",
    "Minimum": "{field}不能小于{limit}",
    "Maximum": "{field}不能大于{limit}",
    "ExclusiveMinimum": "{field}须大于{limit}",
    "ExclusiveMaximum": "{field}须小于{limit}",
    "MinLength": "{field}过短",
    "MaxLength": "{field}过长",
    "MinItems": "{field}至少需要{limit}项",
    "MaxItems": "{field}最多{limit}项",
    "Enum": "{field}不在可选范围内",
    "Constant": "{field}须确认",
    "Pattern": "{field}格式不正确",
    "Format": "{field}格式不正确",
    "AdditionalProperties": "表单含有未定义的项目",
}


def check_schema(form_schema: Mapping[str, Any]) -> str | None:
    """Why `form_schema` is no valid JSON Schema, or None."""
    try:
        jsonschema_rs.meta.validate(dict(form_schema))
    except jsonschema_rs.ValidationError as error:
        return str(error.message)
    return None


def _title(form_schema: Mapping[str, Any], path: list[str | int]) -> str:
    """The `title` of the field at `path` (its last key where the schema has none)."""
    node: Any = form_schema
    for part in path:
        if isinstance(part, int):
            node = node.get("items", {}) if isinstance(node, Mapping) else {}
        else:
            properties = node.get("properties", {}) if isinstance(node, Mapping) else {}
            node = properties.get(part, {})
    title = node.get("title") if isinstance(node, Mapping) else None
    return str(title or (path[-1] if path else "申请表"))


def form_errors(form_schema: Mapping[str, Any], data: Any) -> dict[str, str]:
    """Every field of `data` the form refuses: {path: Chinese message}; empty when valid."""
    # Formats (dates) are checked, and a $ref never reaches out to the network.
    validator = jsonschema_rs.validator_for(dict(form_schema), validate_formats=True, offline=True)
    errors: dict[str, str] = {}
    for error in validator.iter_errors(data):
        path = list(error.instance_path)
        kind = type(error.kind).__name__
        if kind == "Required":
            missing = str(getattr(error.kind, "property", "")) or ""
            path = [*path, missing] if missing else path
        field = _title(form_schema, path)
        limit = getattr(error.kind, "limit", "")
        template = _MESSAGES.get(kind, "{field}填写不正确")
        key = ".".join(str(part) for part in path) or "form"
        errors.setdefault(key, template.format(field=field, limit=limit))
    return errors


def check_form(form_schema: Mapping[str, Any], data: Any) -> None:
    """Refuse a form that does not satisfy its schema (422 FORM_INVALID, one message a field)."""
    errors = form_errors(form_schema, data)
    if errors:
        raise FormInvalid(fields=errors)
