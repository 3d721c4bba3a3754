"""Document templates: what each kind of issued document prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.seals.errors import TemplateUnknown


@dataclass(frozen=True)
class Template:
    key: str
    title: str
    number_prefix: str  # e.g. 番气证
    holder_label: str
    id_label: str
    fields: list[tuple[str, str]]  # (data key, printed label)
    paragraphs: list[str] = field(default_factory=list)  # str.format(**data)
    table_key: str | None = None  # data[table_key]: rows of cells, first row the header
    personal_signature: bool = False


TEMPLATES: dict[str, Template] = {
    t.key: t
    for t in (
        Template(
            key="meteorological_certificate",
            title="气象证明",
            number_prefix="番气证",
            holder_label="申请单位/个人",
            id_label="证件号码",
            fields=[("purpose", "证明用途"), ("place", "地点"), ("period", "时段")],
            paragraphs=[
                "经查询番禺区国家气象观测站资料，兹证明上述时段该地点的气象实况如下表所示。"
            ],
            table_key="observations",
        ),
        Template(
            key="outdoor_advertising_permit",
            title="临时户外广告设置许可决定书",
            number_prefix="番城管广许",
            holder_label="申请单位",
            id_label="统一社会信用代码",
            fields=[("location", "设置地点"), ("size", "规格"), ("period", "设置期限")],
            paragraphs=[
                "经审查，你单位的申请符合规定条件，准予在上述地点、期限内设置临时户外广告。"
            ],
        ),
        Template(
            key="drainage_permit",
            title="城镇污水排入排水管网许可证",
            number_prefix="番水排许",
            holder_label="排水户",
            id_label="统一社会信用代码",
            fields=[
                ("address", "排水地址"),
                ("volume", "排水量（立方米/日）"),
                ("period", "有效期限"),
            ],
            paragraphs=["准予按本许可证载明的条件将污水排入城镇排水管网。"],
        ),
        Template(
            key="commitment_letter",
            title="告知承诺书",
            number_prefix="番承诺",
            holder_label="承诺人",
            id_label="身份证号码",
            fields=[("matter_name", "申请事项")],
            paragraphs=[
                "本人已知晓行政机关告知的全部内容，所填写的信息和提交的材料真实、准确、完整。",
                "本人承诺符合告知的条件、标准和要求，愿意承担不实承诺的法律责任。",
            ],
            personal_signature=True,
        ),
    )
}


def get_template(key: str) -> Template:
    try:
        return TEMPLATES[key]
    except KeyError:
        raise TemplateUnknown(fields={"template": [f"未知模板：{key}"]}) from None


def render_values(
    template: Template, data: dict[str, Any]
) -> tuple[list[tuple[str, str]], list[str], list[list[str]]]:
    """The printed fields, paragraphs and table of `template` filled from `data`."""
    fields_out = [(label, str(data.get(key, ""))) for key, label in template.fields]
    safe: dict[str, Any] = {k: v for k, v in data.items() if isinstance(v, str | int | float)}
    paragraphs = [p.format_map(_Default(safe)) for p in template.paragraphs]
    table: list[list[str]] = []
    if template.table_key and isinstance(data.get(template.table_key), list):
        table = [[str(c) for c in row] for row in data[template.table_key] if isinstance(row, list)]
    return fields_out, paragraphs, table


class _Default(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


TemplateBuilder = Callable[[dict[str, Any]], Template]
