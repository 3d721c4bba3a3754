"""Demo set-up of every hall for queueing: address, hours, categories, windows, a printed code."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.halls import service as halls
from app.halls.models import ServiceCategory, Window, WindowStatus
from app.organisation.models import Hall, HallKind
from app.queueing import codes
from app.queueing.models import HallCode
from app.queueing.settings import QueueSettings

# Approximate centres of Panyu's streets and towns (WGS-84), for the location check.
COORDINATES: dict[str, tuple[float, float]] = {
    "市桥街": (22.9385, 113.3640),
    "沙头街": (22.9300, 113.3300),
    "东环街": (22.9450, 113.3850),
    "桥南街": (22.9160, 113.3590),
    "小谷围街": (23.0560, 113.3900),
    "大石街": (23.0130, 113.3130),
    "洛浦街": (23.0330, 113.3380),
    "石壁街": (22.9970, 113.2880),
    "钟村街": (22.9990, 113.3110),
    "大龙街": (22.9640, 113.4050),
    "沙湾街": (22.9050, 113.3330),
    "南村镇": (23.0010, 113.3680),
    "新造镇": (23.0300, 113.4250),
    "化龙镇": (23.0210, 113.4700),
    "石楼镇": (22.9630, 113.4900),
    "石碁镇": (22.9630, 113.4380),
}
# (name, prefix, daily cap, typical minutes, matters)
CATEGORIES: list[tuple[str, str, int, float, list[str]]] = [
    ("综合业务", "A", 400, 8.0, ["居住证办理", "户籍证明", "气象证明"]),
    ("社保医保", "B", 300, 10.0, ["社保卡补办", "医保参保登记", "养老保险转移"]),
    ("企业开办", "C", 150, 20.0, ["企业设立登记", "税务登记", "印章刻制备案"]),
    ("不动产登记", "D", 150, 25.0, ["不动产转移登记", "抵押登记"]),
    ("税务", "E", 200, 12.0, ["个税申报", "发票领用"]),
]
TOWN_CATEGORIES = ("A", "B", "E")
WEEKDAY_HOURS = [(d, dt.time(9), dt.time(12)) for d in range(5)] + [
    (d, dt.time(13, 30), dt.time(17, 30)) for d in range(5)
]
SATURDAY_MORNING = [(5, dt.time(9), dt.time(12))]


def _windows(kind: HallKind, prefixes: list[str]) -> list[tuple[int, list[str]]]:
    if kind == HallKind.DISTRICT:
        # 16 windows: integrated (A+B+E), enterprise (C), real estate (D).
        layout = [["A", "B", "E"]] * 8 + [["C"]] * 4 + [["D"]] * 3 + [["A", "B", "C", "D", "E"]]
    elif kind == HallKind.SUB_CENTRE:
        layout = [["A", "B", "E"]] * 4 + [["C"]] * 2 + [["D"]] * 2
    else:
        layout = [["A", "B", "E"]] * 4
    return [(n, [p for p in ps if p in prefixes]) for n, ps in enumerate(layout, start=1)]


def seed_queueing(
    session: Session, settings: QueueSettings, *, now: dt.datetime, open_windows: bool = True
) -> list[tuple[Hall, str]]:
    """Set up every hall that has no categories yet; return each hall's printed-code token."""
    tokens: list[tuple[Hall, str]] = []
    for hall in session.scalars(select(Hall).order_by(Hall.code)):
        has_categories = session.scalar(
            select(ServiceCategory.id).where(ServiceCategory.hall_id == hall.id).limit(1)
        )
        if not has_categories:
            lat, lng = COORDINATES.get(hall.town or "", COORDINATES["市桥街"])
            halls.update_profile(
                session,
                hall.id,
                {
                    "address": f"广州市番禺区{hall.town or ''}{hall.name}",
                    "latitude": lat,
                    "longitude": lng,
                    "phone": "020-84600000",
                },
            )
            extra = SATURDAY_MORNING if hall.kind == HallKind.DISTRICT else []
            halls.replace_weekly_hours(session, hall.id, WEEKDAY_HOURS + extra)
            chosen = [
                c for c in CATEGORIES if hall.kind != HallKind.TOWN or c[1] in TOWN_CATEGORIES
            ]
            by_prefix = {}
            for order, (name, prefix, cap, minutes, matters) in enumerate(chosen):
                by_prefix[prefix] = halls.create_category(
                    session,
                    hall.id,
                    {
                        "name": name,
                        "prefix": prefix,
                        "daily_cap": cap,
                        "typical_minutes": minutes,
                        "matters": matters,
                        "sort_order": order,
                    },
                )
            for number, prefixes in _windows(hall.kind, list(by_prefix)):
                window = halls.create_window(
                    session,
                    hall.id,
                    number=number,
                    label=f"{number}号窗口",
                    category_ids=[by_prefix[p].id for p in prefixes],
                )
                if open_windows:
                    window.status, window.status_changed_at = WindowStatus.OPEN, now
        code = session.scalars(
            select(HallCode)
            .where(HallCode.hall_id == hall.id, HallCode.revoked_at.is_(None))
            .limit(1)
        ).first()
        if code is None:
            code = codes.create_printed_code(
                session, settings, hall.id, label="大厅入口", staff_id=None
            )
        tokens.append((hall, codes.printed_token(settings, code)))
    session.flush()
    return tokens


# A demo-only hall open every hour of every day, so the queue can be tried at any time (the
# real halls keep office hours, and a demo machine in Beijing at night finds them closed).
ROUND_THE_CLOCK_HALL = ("PY-DEMO", "演示大厅（全天开放）", HallKind.TOWN, "市桥街")


def round_the_clock_hall(session: Session) -> Hall:
    """The demo hall's row (created if missing; set up by `open_round_the_clock_hall`)."""
    code, name, kind, town = ROUND_THE_CLOCK_HALL
    hall = session.scalar(select(Hall).where(Hall.code == code))
    if hall is None:
        hall = Hall(code=code, name=name, kind=kind, town=town)
        session.add(hall)
        session.flush()
    return hall


def open_round_the_clock_hall(session: Session, hall: Hall, *, clerk_id: int) -> None:
    """Give the demo hall categories, all-day hours and windows staffed by `clerk_id`
    (so a number taken there gets a wait estimate); nothing if it has categories already."""
    if session.scalar(select(ServiceCategory.id).where(ServiceCategory.hall_id == hall.id)):
        return
    setup_queue_hall(
        session,
        hall,
        categories=[("综合业务", "A"), ("社保医保", "B")],
        windows=[(1, "AB"), (2, "A"), (3, "B")],
        clerk_id=clerk_id,
    )


def write_printable_codes(tokens: list[tuple[Hall, str]], folder: Path) -> Path:
    """One SVG per hall (for printing) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for hall, token in tokens:
        (folder / f"{hall.code}.svg").write_bytes(codes.qr_svg(token))
    return folder


# A hall set up by hand, for benchmarks and tests: at the district centre, open all day.
HALL_LAT, HALL_LNG = 22.9373, 113.3842  # 区政务服务中心, 市桥
ALL_DAY = (dt.time(0, 0), dt.time(23, 59, 59))


@dataclass
class QueueHall:
    hall: Hall
    categories: dict[str, ServiceCategory] = field(default_factory=dict)
    windows: dict[int, Window] = field(default_factory=dict)


def setup_queue_hall(
    session: Session,
    hall: Hall,
    *,
    categories: Sequence[tuple[str, str]] = (("综合业务", "A"), ("社保医保", "B")),
    windows: Sequence[tuple[int, str]] = ((1, "AB"), (2, "A"), (3, "B")),
    hours: Sequence[tuple[int, dt.time, dt.time]] | None = None,
    open_windows: bool = True,
    daily_cap: int = 500,
    typical_minutes: float = 10.0,
    clerk_id: int | None = None,
) -> QueueHall:
    """Give a hall a profile, hours (every day, all day, holidays included by default),
    categories and windows."""
    halls.update_profile(
        session,
        hall.id,
        {
            "address": "番禺区市桥街",
            "latitude": HALL_LAT,
            "longitude": HALL_LNG,
            "open_on_public_holidays": hours is None,
        },
    )
    halls.replace_weekly_hours(session, hall.id, hours or [(d, *ALL_DAY) for d in range(7)])
    result = QueueHall(hall)
    for name, prefix in categories:
        result.categories[prefix] = halls.create_category(
            session,
            hall.id,
            {
                "name": name,
                "prefix": prefix,
                "daily_cap": daily_cap,
                "typical_minutes": typical_minutes,
            },
        )
    for number, prefixes in windows:
        window = halls.create_window(
            session,
            hall.id,
            number=number,
            label=None,
            category_ids=[result.categories[p].id for p in prefixes],
        )
        if open_windows:
            window.status = WindowStatus.OPEN
            window.clerk_id = clerk_id
        result.windows[number] = window
    session.flush()
    return result
