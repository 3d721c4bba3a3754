"""Document templates: what each kind of issued document prints, which fields it needs and
whom it may be issued to.

A template is checked before anything is rendered: its fields are typed, and the holder's
identity number must pass its check digit (居民身份证 GB 11643, 统一社会信用代码 GB 32100), so a
permit never goes out with a number nobody can look up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal

from stdnum.cn import uscc

from app.identity.errors import IdNumberInvalid
from app.identity.realname import normalize_id_number
from app.seals.errors import DocumentDataInvalid, TemplateUnknown

if TYPE_CHECKING:
    from app.seals.issuing import Holder

FieldType = Literal["text", "integer", "decimal", "date", "table"]
HolderKind = Literal["enterprise", "person"]


def _is_id_card_number(number: str) -> bool:
    # The real-name rule (check digit and birth date), not stdnum's region-by-year check.
    try:
        normalize_id_number(number, today=dt.date.today())
    except IdNumberInvalid:
        return False
    return True


# What a holder of each kind identifies with, and the check that number must pass.
HOLDER_ID_RULES: dict[str, tuple[str, Callable[[str], bool]]] = {
    "enterprise": ("统一社会信用代码", uscc.is_valid),
    "person": ("居民身份证号码", _is_id_card_number),
}
_HOLDER_KIND_NAMES = {"enterprise": "单位", "person": "个人"}


@dataclass(frozen=True)
class TemplateField:
    key: str
    label: str  # printed on the document and used in error messages
    type: FieldType = "text"
    required: bool = True
    max_length: int = 200  # for text


@dataclass(frozen=True)
class Template:
    key: str
    title: str
    number_prefix: str  # e.g. 番气证
    holder_label: str
    id_label: str
    holder_kinds: tuple[HolderKind, ...]
    fields: tuple[TemplateField, ...]
    # Matter codes this template is issued for; empty: any matter the seal is authorised for
    # (a commitment letter accompanies an application for any matter).
    matters: tuple[str, ...] = ()
    paragraphs: tuple[str, ...] = ()  # str.format(**data)
    personal_signature: bool = False

    @property
    def printed_fields(self) -> list[TemplateField]:
        return [f for f in self.fields if f.type != "table"]

    @property
    def table_field(self) -> TemplateField | None:
        return next((f for f in self.fields if f.type == "table"), None)


TEMPLATES: dict[str, Template] = {
    t.key: t
    for t in (
        Template(
            key="meteorological_certificate",
            title="气象证明",
            number_prefix="番气证",
            holder_label="申请单位/个人",
            id_label="证件号码",
            holder_kinds=("enterprise", "person"),
            fields=(
                TemplateField("purpose", "证明用途", max_length=100),
                TemplateField("place", "地点", max_length=100),
                TemplateField("period", "时段", max_length=100),
                TemplateField("observations", "观测数据", type="table", required=False),
            ),
            matters=("meteorological_certificate", "PY-QXJ-QXZM"),
            paragraphs=(
                "经查询番禺区国家气象观测站资料，兹证明上述时段该地点的气象实况如下表所示。",
            ),
        ),
        Template(
            key="outdoor_advertising_permit",
            title="临时户外广告设置许可决定书",
            number_prefix="番城管广许",
            holder_label="申请单位",
            id_label="统一社会信用代码",
            holder_kinds=("enterprise",),
            fields=(
                TemplateField("location", "设置地点", max_length=100),
                TemplateField("size", "规格", max_length=50),
                TemplateField("period", "设置期限", max_length=50),
            ),
            matters=("outdoor_advertising_permit", "PY-CGJ-LSGG"),
            paragraphs=(
                "经审查，你单位的申请符合规定条件，准予在上述地点、期限内设置临时户外广告。",
            ),
        ),
        Template(
            key="drainage_permit",
            title="城镇污水排入排水管网许可证",
            number_prefix="番水排许",
            holder_label="排水户",
            id_label="统一社会信用代码",
            holder_kinds=("enterprise",),
            fields=(
                TemplateField("address", "排水地址", max_length=100),
                TemplateField("volume", "排水量（立方米/日）", type="decimal"),
                TemplateField("period", "有效期限", max_length=50),
            ),
            matters=("drainage_permit", "PY-SWJ-PSXK"),
            paragraphs=("准予按本许可证载明的条件将污水排入城镇排水管网。",),
        ),
        Template(
            key="construction_waste_permit",
            title="城市建筑垃圾处置核准文件",
            number_prefix="番城管建核",
            holder_label="申请单位",
            id_label="统一社会信用代码",
            holder_kinds=("enterprise",),
            fields=(
                TemplateField("project", "工程名称", max_length=128),
                TemplateField("site", "工地地址", max_length=128),
                TemplateField("volume", "处置量（立方米）", type="decimal"),
                TemplateField("period", "处置期限", max_length=50),
            ),
            matters=("PY-CGJ-JZLJ",),
            paragraphs=("经审查，准予按本文件载明的工程、数量和期限处置建筑垃圾。",),
        ),
        Template(
            key="application_form",
            title="政务服务事项申请表",
            number_prefix="番申",
            holder_label="申请人",
            id_label="身份证号码",
            holder_kinds=("person",),
            fields=(
                TemplateField("matter_name", "申请事项", max_length=100),
                TemplateField("application_number", "办件编号", max_length=32),
                TemplateField("on_behalf_of", "代表单位", required=False, max_length=100),
                TemplateField("answers", "填报内容", type="table"),
            ),
            paragraphs=("本人确认以上填报内容真实、准确、完整，并对其真实性负责。",),
            personal_signature=True,
        ),
        Template(
            key="commitment_letter",
            title="告知承诺书",
            number_prefix="番承诺",
            holder_label="承诺人",
            id_label="身份证号码",
            holder_kinds=("person",),
            fields=(TemplateField("matter_name", "申请事项", max_length=100),),
            paragraphs=(
                "本人已知晓行政机关告知的全部内容，所填写的信息和提交的材料真实、准确、完整。",
                "本人承诺符合告知的条件、标准和要求，愿意承担不实承诺的法律责任。",
            ),
            personal_signature=True,
        ),
    )
}


def get_template(key: str) -> Template:
    try:
        return TEMPLATES[key]
    except KeyError:
        raise TemplateUnknown(fields={"template": [f"未知模板：{key}"]}) from None


def validate_request(template: Template, holder: Holder, data: dict[str, Any]) -> None:
    """Refuse (422, a message per field) a holder or data the template cannot be issued with."""
    problems: dict[str, dict[str, list[str]]] = {}
    holder_problems = _holder_problems(template, holder)
    if holder_problems:
        problems["holder"] = holder_problems
    data_problems = {
        spec.key: [message]
        for spec in template.fields
        if (message := _field_problem(spec, data.get(spec.key))) is not None
    }
    if data_problems:
        problems["data"] = data_problems
    if problems:
        raise DocumentDataInvalid(fields=problems)


def _holder_problems(template: Template, holder: Holder) -> dict[str, list[str]]:
    if holder.kind not in template.holder_kinds:
        allowed = "或".join(_HOLDER_KIND_NAMES[k] for k in template.holder_kinds)
        return {"kind": [f"该文书只能签发给{allowed}"]}
    id_name, is_valid = HOLDER_ID_RULES[holder.kind]
    if not holder.id_number:
        return {"id_number": [f"请填写{id_name}"]}
    if not is_valid(holder.id_number):
        return {"id_number": [f"{id_name}有误，请核对"]}
    return {}


def _field_problem(spec: TemplateField, value: Any) -> str | None:
    """Why `value` cannot fill `spec`, or None."""
    if value is None or value == "" or value == []:
        return f"请填写{spec.label}" if spec.required else None
    if spec.type == "text":
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            return f"{spec.label}应为文字"
        if len(str(value)) > spec.max_length:
            return f"{spec.label}不能超过{spec.max_length}个字"
    elif spec.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{spec.label}应为非负整数"
    elif spec.type == "decimal":
        if not _is_positive_number(value):
            return f"{spec.label}应为正数"
    elif spec.type == "date":
        try:
            dt.date.fromisoformat(str(value))
        except ValueError:
            return f"{spec.label}应为日期（如 2026-01-31）"
    elif spec.type == "table" and not (
        isinstance(value, list)
        and all(isinstance(row, list) and len(row) <= 12 for row in value)
        and len(value) <= 100
    ):
        return f"{spec.label}应为表格（每行若干单元格）"
    return None


def _is_positive_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return False
    return number.is_finite() and number > 0


def render_values(
    template: Template, data: dict[str, Any]
) -> tuple[list[tuple[str, str]], list[str], list[list[str]]]:
    """The printed fields, paragraphs and table of `template` filled from validated `data`."""
    fields_out = [(spec.label, str(data.get(spec.key, ""))) for spec in template.printed_fields]
    safe: dict[str, Any] = {k: v for k, v in data.items() if isinstance(v, str | int | float)}
    paragraphs = [p.format_map(_Default(safe)) for p in template.paragraphs]
    table: list[list[str]] = []
    table_field = template.table_field
    if table_field is not None and isinstance(data.get(table_field.key), list):
        table = [[str(c) for c in row] for row in data[table_field.key] if isinstance(row, list)]
    return fields_out, paragraphs, table


class _Default(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def template_catalogue() -> list[Template]:
    return list(TEMPLATES.values())
