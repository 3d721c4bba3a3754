"""Panyu's departments and service halls, as the district lists them (see shared/DOMAIN.md)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.organisation.models import Department, Hall, HallKind

DEPARTMENTS: list[tuple[str, str]] = [
    ("PY-ZSJ", "番禺区政务服务数据管理局"),
    ("PY-QXJ", "番禺区气象局"),
    ("PY-SWJ", "番禺区水务局"),
    ("PY-CGJ", "番禺区城市管理和综合执法局"),
    ("PY-SWU", "番禺区商务局"),
    ("PY-GXJ", "番禺区工业和信息化局"),
    ("PY-KJJ", "番禺区科学技术局"),
    ("PY-SJJ", "番禺区市场监督管理局"),
    ("PY-RSJ", "番禺区人力资源和社会保障局"),
    ("PY-ZJJ", "番禺区住房和城乡建设局"),
]

TOWNS: list[str] = [
    "市桥街",
    "沙头街",
    "东环街",
    "桥南街",
    "小谷围街",
    "大石街",
    "洛浦街",
    "石壁街",
    "钟村街",
    "大龙街",
    "沙湾街",
    "南村镇",
    "新造镇",
    "化龙镇",
    "石楼镇",
    "石碁镇",
]

# (code, name, kind, town): 1 district centre, 2 sub-centres, 16 town/street centres.
HALLS: list[tuple[str, str, HallKind, str | None]] = [
    ("PY-D00", "番禺区政务服务中心", HallKind.DISTRICT, "市桥街"),
    ("PY-S01", "番禺区政务服务中心万博分中心", HallKind.SUB_CENTRE, "钟村街"),
    ("PY-S02", "番禺区政务服务中心大学城分中心", HallKind.SUB_CENTRE, "小谷围街"),
    *(
        (f"PY-T{index:02d}", f"{town}政务服务中心", HallKind.TOWN, town)
        for index, town in enumerate(TOWNS, start=1)
    ),
]


def load_organisation(session: Session) -> tuple[dict[str, Department], dict[str, Hall]]:
    """Create the departments and halls that are missing; return both by code."""
    departments = {d.code: d for d in session.scalars(select(Department))}
    for code, name in DEPARTMENTS:
        if code not in departments:
            departments[code] = Department(code=code, name=name)
            session.add(departments[code])
    halls = {h.code: h for h in session.scalars(select(Hall))}
    for code, name, kind, town in HALLS:
        if code not in halls:
            halls[code] = Hall(code=code, name=name, kind=kind, town=town)
            session.add(halls[code])
    session.flush()
    return departments, halls
