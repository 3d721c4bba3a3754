"""Synthetic Panyu enterprises with realistic profiles, and demo policies from the seeds.

Distributions follow Panyu's mix (jewellery, lighting/audio and other manufacturing; trade;
lodging and catering; software; logistics), mostly small and micro firms, a few percent
high-tech or 专精特新, about one in eight exporting. Deterministic for a seeded `rng`.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

from app.enterprises.registry import PANYU_REGION, make_uscc
from app.policies import reference
from app.policies.reference import Tag

# (industry class code, relative frequency, typical employees (median), revenue per head, 万元)
_INDUSTRIES: tuple[tuple[str, int, int, float], ...] = (
    ("C2438", 8, 25, 40.0),  # 珠宝首饰及有关物品制造
    ("C3872", 6, 40, 35.0),  # 照明灯具制造
    ("C3952", 5, 35, 38.0),  # 音响设备制造
    ("C3311", 4, 30, 30.0),  # 金属结构制造
    ("C1810", 4, 45, 20.0),  # 机织服装制造
    ("C2110", 3, 30, 25.0),  # 木质家具制造
    ("F5137", 8, 6, 120.0),  # 家用电器批发
    ("F5191", 6, 5, 100.0),  # 互联网批发
    ("F5211", 6, 8, 50.0),  # 百货零售
    ("F5221", 5, 5, 40.0),  # 粮油零售
    ("H6110", 2, 30, 15.0),  # 旅游饭店
    ("H6121", 3, 8, 10.0),  # 经济型连锁酒店
    ("H6210", 8, 15, 12.0),  # 正餐服务
    ("H6220", 5, 8, 10.0),  # 快餐服务
    ("I6513", 5, 20, 40.0),  # 应用软件开发
    ("I6450", 3, 12, 35.0),  # 互联网数据服务
    ("L7212", 5, 6, 30.0),  # 投资与资产管理
    ("L7281", 3, 10, 20.0),  # 科技中介服务
    ("M7320", 3, 15, 25.0),  # 工程和技术研究和试验发展
    ("G5430", 4, 20, 30.0),  # 道路货物运输
    ("G5821", 2, 10, 60.0),  # 货物运输代理
    ("E5011", 3, 25, 40.0),  # 公共建筑装饰和装修
    ("K7020", 2, 60, 8.0),  # 物业管理
    ("R8870", 2, 6, 20.0),  # 文化娱乐经纪人（文化艺术业）
    ("O8010", 3, 4, 15.0),  # 家庭服务
)
_CODES = [row[0] for row in _INDUSTRIES]
_WEIGHTS = [row[1] for row in _INDUSTRIES]
_BY_CODE = {row[0]: row for row in _INDUSTRIES}
_TOWN_WEIGHTS = (14, 9, 8, 7, 5, 11, 8, 4, 8, 5, 4, 8, 3, 4, 4, 5)
_FIRST = dt.date(1995, 1, 1)
_SPAN = (dt.date(2024, 12, 31) - _FIRST).days


def profile_for(rng: random.Random) -> dict[str, Any]:
    """One synthetic profile (without the enterprise id): industry, town, size, tags."""
    code = rng.choices(_CODES, weights=_WEIGHTS)[0]
    _, _, median, per_head = _BY_CODE[code]
    employees = max(1, int(rng.lognormvariate(0, 1.0) * median))
    revenue_wan = max(1.0, employees * per_head * rng.lognormvariate(0, 0.6))
    tags: set[str] = set()
    manufacturing = code.startswith("C")
    if rng.random() < (0.30 if manufacturing else 0.08):
        tags.add(Tag.EXPORTER)
    if rng.random() < (0.06 if manufacturing or code.startswith(("I", "M")) else 0.005):
        tags.add(Tag.HIGH_TECH)
    if rng.random() < (0.04 if manufacturing else 0.005):
        tags.add(Tag.SPECIALISED)
    if rng.random() < 0.05 and code.startswith(("C", "I", "M")):
        tags.add(Tag.TECH_SME)
    if revenue_wan >= 2000 and manufacturing:
        tags.add(Tag.ABOVE_SCALE)
    known = rng.random() < 0.97  # a few profiles lack figures or tags: "unknown" results
    revenue = int(revenue_wan * 10_000) if known else None
    size = reference.size_class(code, employees, revenue)
    return {
        "industry_code": code,
        "town": rng.choices(reference.TOWNS, weights=_TOWN_WEIGHTS)[0],
        "established_on": _FIRST + dt.timedelta(days=rng.randrange(_SPAN)),
        "employees": employees,
        "revenue_yuan": revenue,
        "size_class": size.value if size else None,
        "tag_bits": reference.tags_to_bits(sorted(tags)) if rng.random() < 0.95 else None,
    }


def enterprises(count: int, rng: random.Random, *, start: int = 0) -> Iterator[dict[str, Any]]:
    """`count` registry rows + profiles; USCCs unique by serial (start..start+count)."""
    for serial in range(start, start + count):
        profile = profile_for(rng)
        section = profile["industry_code"][0]
        uscc = make_uscc("91", PANYU_REGION, f"{10_000_000 + serial:08d}")
        yield {
            "uscc": uscc,
            "name": f"广州市番禺区合成企业{serial:08d}有限公司",
            "legal_rep_name": "陈伟",
            "status": "存续",
            "entity_type": "有限责任公司（自然人投资或控股）",
            "industry_code": section,
            "industry": reference.SECTIONS[section][0],
            "registered_town": profile["town"],
            "established_on": profile["established_on"],
            **{f"profile_{k}": v for k, v in profile.items()},
        }


def demo_policies(today: dt.date) -> list[dict[str, Any]]:
    """Policies modelled on the seed documents (department codes from the catalogue)."""
    until = today.replace(month=12, day=31)
    return [
        {
            "department": "PY-SWU",
            "title": "小微出口企业出口信用保险保费支持",
            "doc_number": "番商务〔2024〕8号",
            "summary": "对投保短期出口信用保险的小型、微型出口企业，按实缴保费给予最高80%支持。",
            "benefit_kind": "insurance",
            "benefit_amount_yuan": 50_000,
            "delivery": "automatic",
            "expires_on": until,
            "criteria_form": {
                "tags_all": [Tag.EXPORTER.value],
                "size_classes": ["small", "micro"],
                "article": "第三条",
            },
        },
        {
            "department": "PY-SWU",
            "title": "住宿餐饮业商务发展专项资金",
            "doc_number": "番商务〔2024〕15号",
            "summary": "支持住宿和餐饮企业稳定经营、提升服务质量，按营业收入分档给予一次性补贴。",
            "benefit_kind": "subsidy",
            "benefit_amount_yuan": 30_000,
            "delivery": "application",
            "item_code": "PY-SWU-ZX-001",
            "expires_on": until,
            "criteria_form": {
                "industry_include": ["H61", "H62"],
                "revenue_min_yuan": 1_000_000,
                "article": "第二条",
            },
        },
        {
            "department": "PY-KJJ",
            "title": "高新技术企业认定奖励",
            "doc_number": "番科〔2024〕21号",
            "summary": "对首次通过高新技术企业认定的企业给予一次性奖励。",
            "benefit_kind": "award",
            "benefit_amount_yuan": 200_000,
            "delivery": "automatic",
            "expires_on": until,
            "criteria_form": {"tags_all": [Tag.HIGH_TECH.value], "article": "第四条"},
        },
        {
            "department": "PY-GXJ",
            "title": "专精特新中小企业发展扶持资金",
            "doc_number": "番工信〔2024〕5号",
            "summary": "支持专精特新中小企业技术改造、数字化转型，给予项目投资额一定比例补助。",
            "benefit_kind": "subsidy",
            "benefit_amount_yuan": 300_000,
            "delivery": "application",
            "item_code": "PY-GXJ-ZJTX-002",
            "expires_on": until,
            "criteria_form": {
                "tags_all": [Tag.SPECIALISED.value],
                "industry_include": ["C"],
                "size_classes": ["medium", "small", "micro"],
                "article": "第三条",
            },
        },
    ]
