"""Demo shared data for Panyu: weather stations with two years of daily observations, areas
where outdoor advertising is forbidden, the sewage systems' catchments, and key dischargers.

Repeatable: the same day at the same station always gets the same weather (a PRNG seeded by
station and date), so a certificate issued in a demo can be issued again identically.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Sequence

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from app.enterprises.models import RegistryEnterprise
from app.shared_data.connectors import AD_RESTRICTED, DRAINAGE_COVERAGE
from app.shared_data.models import GeoArea, KeyDischarger, WeatherObservation, WeatherStation

ARCHIVE_DAYS = 730

# (区站号, name, town, longitude, latitude)
STATIONS = [
    ("59481", "番禺国家基本气象站", "市桥街", 113.352, 22.938),
    ("G3402", "南村自动气象站", "南村镇", 113.392, 23.010),
    ("G3403", "沙湾自动气象站", "沙湾街", 113.330, 22.903),
    ("G3405", "石楼自动气象站", "石楼镇", 113.492, 22.958),
    ("G3406", "化龙自动气象站", "化龙镇", 113.471, 23.038),
    ("G3410", "大岗自动气象站", "大岗镇", 113.412, 22.802),
]


def _box(lon: float, lat: float, half_lon: float, half_lat: float) -> list[list[float]]:
    return [
        [lon - half_lon, lat - half_lat],
        [lon + half_lon, lat - half_lat],
        [lon + half_lon, lat + half_lat],
        [lon - half_lon, lat + half_lat],
    ]


# (kind, name, reason, polygon)
AREAS: list[tuple[str, str, str, list[list[float]]]] = [
    (
        AD_RESTRICTED,
        "沙湾古镇历史文化街区",
        "历史文化街区核心保护范围",
        [
            [113.330, 22.898],
            [113.346, 22.899],
            [113.348, 22.908],
            [113.338, 22.913],
            [113.329, 22.907],
        ],
    ),
    (
        AD_RESTRICTED,
        "余荫山房文物保护范围",
        "文物保护单位保护范围",
        _box(113.398, 23.005, 0.004, 0.003),
    ),
    (AD_RESTRICTED, "大夫山森林公园", "风景名胜区和森林公园", _box(113.330, 22.942, 0.015, 0.012)),
    (
        AD_RESTRICTED,
        "番禺区人民政府周边",
        "国家机关办公场所周边",
        _box(113.384, 22.938, 0.003, 0.003),
    ),
    (AD_RESTRICTED, "广州南站站前广场", "交通枢纽安全区域", _box(113.269, 22.989, 0.006, 0.005)),
    (
        DRAINAGE_COVERAGE,
        "前锋净水厂服务范围（市桥、东环、桥南）",
        "城镇污水处理系统",
        [[113.33, 22.90], [113.45, 22.90], [113.45, 23.00], [113.33, 23.00]],
    ),
    (
        DRAINAGE_COVERAGE,
        "大学城—南村污水处理系统",
        "城镇污水处理系统",
        [[113.35, 23.00], [113.45, 23.00], [113.45, 23.08], [113.35, 23.08]],
    ),
    (
        DRAINAGE_COVERAGE,
        "石楼污水处理厂服务范围",
        "城镇污水处理系统",
        [[113.45, 22.92], [113.55, 22.92], [113.55, 23.02], [113.45, 23.02]],
    ),
    (
        DRAINAGE_COVERAGE,
        "大岗污水处理厂服务范围",
        "城镇污水处理系统",
        [[113.38, 22.78], [113.45, 22.78], [113.45, 22.84], [113.38, 22.84]],
    ),
]


def _observation(code: str, day: dt.date) -> dict[str, object]:
    """A plausible day at a Pearl River Delta station: warm, wet April to September."""
    rng = random.Random(f"{code}:{day.isoformat()}")  # noqa: S311 - repeatable demo data  # nosec B311  # repeatable demo data, never a secret
    season = math.sin(2 * math.pi * (day.timetuple().tm_yday - 105) / 365)
    mean = 22.5 + 6.5 * season
    wet = 4 <= day.month <= 9
    rain = rng.expovariate(1 / (18 if wet else 6)) if rng.random() < (0.5 if wet else 0.15) else 0.0
    wind = rng.uniform(2.0, 8.0) + (rng.uniform(4, 12) if rain > 25 else 0.0)
    phenomena = []
    if rain >= 50:
        phenomena.append("暴雨")
    elif rain >= 0.1:
        phenomena.append("降雨")
    if wet and rain > 25 and rng.random() < 0.6:
        phenomena.append("雷暴")
    if wind >= 17.2:
        phenomena.append("大风")
    return {
        "day": day,
        "precipitation_mm": round(rain, 1),
        "max_wind_ms": round(wind, 1),
        "temp_max_c": round(mean + 4 + rng.uniform(-1.5, 1.5), 1),
        "temp_min_c": round(mean - 4 + rng.uniform(-1.5, 1.5), 1),
        "phenomena": "、".join(phenomena) or "无",
    }


def seed_shared_data(session: Session, *, today: dt.date, days: int = ARCHIVE_DAYS) -> None:
    """Add what is missing: stations, observations up to yesterday, areas, key dischargers."""
    known = {s.code: s for s in session.scalars(select(WeatherStation))}
    for code, name, town, lon, lat in STATIONS:
        if code not in known:
            known[code] = WeatherStation(
                code=code, name=name, town=town, longitude=lon, latitude=lat
            )
            session.add(known[code])
    session.flush()
    first = today - dt.timedelta(days=days)
    for station in known.values():
        latest = session.scalar(
            select(func.max(WeatherObservation.day)).where(
                WeatherObservation.station_id == station.id
            )
        )
        start = max(first, latest + dt.timedelta(days=1)) if latest else first
        rows = [
            {"station_id": station.id, **_observation(station.code, start + dt.timedelta(days=n))}
            for n in range((today - start).days)
        ]
        if rows:
            session.execute(insert(WeatherObservation), rows)
    seed_areas(session, AREAS)
    _seed_key_dischargers(session)
    session.flush()


def seed_areas(session: Session, areas: Sequence[tuple[str, str, str, list[list[float]]]]) -> None:
    existing = {(kind, name) for kind, name in session.execute(select(GeoArea.kind, GeoArea.name))}
    for kind, name, reason, polygon in areas:
        if (kind, name) in existing:
            continue
        lons, lats = [p[0] for p in polygon], [p[1] for p in polygon]
        session.add(
            GeoArea(
                kind=kind,
                name=name,
                reason=reason,
                polygon=polygon,
                min_lon=min(lons),
                max_lon=max(lons),
                min_lat=min(lats),
                max_lat=max(lats),
            )
        )


def _seed_key_dischargers(session: Session) -> None:
    """About one in eight manufacturers of the demo registry is on the list."""
    listed = set(session.scalars(select(KeyDischarger.uscc)))
    manufacturers = session.execute(
        select(RegistryEnterprise.uscc, RegistryEnterprise.name)
        .where(RegistryEnterprise.industry_code == "C")
        .order_by(RegistryEnterprise.id)
    ).all()
    for index, (uscc, name) in enumerate(manufacturers):
        if index % 8 == 0 and uscc not in listed:
            session.add(KeyDischarger(uscc=uscc, name=name, listed_year=2025))
