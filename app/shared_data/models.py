"""The embedded shared-data tables: what the district's data-sharing platform would answer,
kept locally for development, demos and tests (the HTTP connectors replace them in production)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, intpk, str64, str128


class WeatherStation(Base):
    __tablename__ = "weather_stations"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(16), unique=True)  # 区站号, e.g. 59481
    name: Mapped[str64]
    town: Mapped[str] = mapped_column(String(32))
    longitude: Mapped[float] = mapped_column(Float)
    latitude: Mapped[float] = mapped_column(Float)


class WeatherObservation(Base):
    """One station's daily summary (日值), as the meteorological archive keeps it."""

    __tablename__ = "weather_observations"
    __table_args__ = (UniqueConstraint("station_id", "day"),)

    id: Mapped[intpk]
    station_id: Mapped[int] = mapped_column(ForeignKey("weather_stations.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    precipitation_mm: Mapped[float] = mapped_column(Float)
    max_wind_ms: Mapped[float] = mapped_column(Float)
    temp_max_c: Mapped[float] = mapped_column(Float)
    temp_min_c: Mapped[float] = mapped_column(Float)
    phenomena: Mapped[str64]  # 雷暴、大风、冰雹 ... or 无


class KeyDischarger(Base):
    """An entry of the key pollutant dischargers list (重点排污单位名录)."""

    __tablename__ = "key_dischargers"

    id: Mapped[intpk]
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str128]
    listed_year: Mapped[int] = mapped_column(Integer)


class GeoArea(Base):
    """A named polygon: an area where outdoor advertising is forbidden, or the catchment of a
    sewage treatment system. The bounding box lets the database pre-select candidates."""

    __tablename__ = "geo_areas"

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(32), index=True)  # ad_restricted | drainage_coverage
    name: Mapped[str128]
    reason: Mapped[str128]
    polygon: Mapped[list[Any]] = mapped_column(JSON)  # [[lon, lat], ...], closed or not
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
