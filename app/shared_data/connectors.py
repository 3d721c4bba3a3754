"""Shared-data connectors (数据共享): one interface, embedded tables or the platform over HTTP.

Each connector answers the facts its `ConnectorSpec` lists, for one application: the form
fields it reads, the applicant enterprise's USCC, the day. A connector that cannot answer
raises `ConnectorUnavailable`; `gather` then leaves its facts out, so every rule reading them is
unknown and the application goes to a reviewer, never to approval.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from shapely.geometry import Point, Polygon
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.enterprises.models import RegistryEnterprise
from app.queueing.codes import distance_meters
from app.shared_data.catalogue import CONNECTORS, ConnectorSpec
from app.shared_data.models import (
    GeoArea,
    KeyDischarger,
    WeatherObservation,
    WeatherStation,
)
from verification.errors import VerificationError
from verification.http import SignedJsonService

log = logging.getLogger(__name__)

# Kept by this system itself: answered from its own tables whichever platform is configured.
LOCAL_ONLY = ("commitment_record",)
AD_RESTRICTED = "ad_restricted"
DRAINAGE_COVERAGE = "drainage_coverage"


class ConnectorUnavailable(Exception):
    """The source did not answer in time, refused, or answered something unreadable."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class LookupRequest:
    form: Mapping[str, Any]
    enterprise_uscc: str | None
    today: dt.date
    applicant_user_id: int | None = None
    now: dt.datetime | None = None

    def coordinates(self) -> tuple[float, float] | None:
        lon, lat = self.form.get("longitude"), self.form.get("latitude")
        if isinstance(lon, int | float) and isinstance(lat, int | float):
            return float(lon), float(lat)
        return None


class Connector(Protocol):
    spec: ConnectorSpec

    def lookup(self, request: LookupRequest) -> dict[str, Any]: ...


def _none(spec: ConnectorSpec) -> dict[str, Any]:
    return {f.name: None for f in spec.fields}


# -- embedded: the local tables ----------------------------------------------------------------


class EnterpriseRegistry:
    spec = CONNECTORS["enterprise_registry"]

    def __init__(self, session: Session) -> None:
        self.session = session

    def lookup(self, request: LookupRequest) -> dict[str, Any]:
        if not request.enterprise_uscc:
            return _none(self.spec)
        found = self.session.scalars(
            select(RegistryEnterprise).where(RegistryEnterprise.uscc == request.enterprise_uscc)
        ).first()
        if found is None:
            return {**_none(self.spec), "enterprise.status": "未登记"}
        return {
            "enterprise.status": str(found.status),
            "enterprise.name": found.name,
            "enterprise.industry_code": found.industry_code,
            "enterprise.town": found.registered_town,
        }


class KeyDischargers:
    spec = CONNECTORS["key_dischargers"]

    def __init__(self, session: Session) -> None:
        self.session = session

    def lookup(self, request: LookupRequest) -> dict[str, Any]:
        if not request.enterprise_uscc:
            return _none(self.spec)
        listed = self.session.scalar(
            select(KeyDischarger.id).where(KeyDischarger.uscc == request.enterprise_uscc)
        )
        return {"discharger.is_key": listed is not None}


def area_containing(session: Session, kind: str, lon: float, lat: float) -> GeoArea | None:
    """The first area of `kind` whose polygon contains the point (boundary included)."""
    candidates = session.scalars(
        select(GeoArea)
        .where(
            GeoArea.kind == kind,
            GeoArea.min_lon <= lon,
            GeoArea.max_lon >= lon,
            GeoArea.min_lat <= lat,
            GeoArea.max_lat >= lat,
        )
        .order_by(GeoArea.id)
    )
    point = Point(lon, lat)
    for area in candidates:
        if Polygon(area.polygon).covers(point):
            return area
    return None


class AreaLookup:
    """Whether the form's coordinates fall in an area of one kind."""

    def __init__(self, session: Session, name: str, kind: str, inside: str, label: str) -> None:
        self.session = session
        self.spec = CONNECTORS[name]
        self.kind, self.inside, self.label = kind, inside, label

    def lookup(self, request: LookupRequest) -> dict[str, Any]:
        point = request.coordinates()
        if point is None:
            return _none(self.spec)
        area = area_containing(self.session, self.kind, *point)
        return {self.inside: area is not None, self.label: area.name if area else None}


class WeatherArchive:
    spec = CONNECTORS["weather_archive"]

    def __init__(self, session: Session) -> None:
        self.session = session

    def lookup(self, request: LookupRequest) -> dict[str, Any]:
        point, day = request.coordinates(), request.form.get("date")
        if point is None or not isinstance(day, str):
            return _none(self.spec)
        try:
            wanted = dt.date.fromisoformat(day)
        except ValueError:
            return _none(self.spec)
        stations = self.session.scalars(select(WeatherStation)).all()
        if not stations:
            return _none(self.spec)
        lon, lat = point
        station = min(stations, key=lambda s: distance_meters(lat, lon, s.latitude, s.longitude))
        distance_km = round(
            distance_meters(lat, lon, station.latitude, station.longitude) / 1000, 1
        )
        observed = self.session.scalars(
            select(WeatherObservation).where(
                WeatherObservation.station_id == station.id, WeatherObservation.day == wanted
            )
        ).first()
        facts = {
            **_none(self.spec),
            "weather.station": station.name,
            "weather.distance_km": distance_km,
            "weather.observed": observed is not None,
        }
        if observed is not None:
            facts.update(
                {
                    "weather.precipitation_mm": observed.precipitation_mm,
                    "weather.max_wind_ms": observed.max_wind_ms,
                    "weather.temp_max_c": observed.temp_max_c,
                    "weather.temp_min_c": observed.temp_min_c,
                    "weather.phenomena": observed.phenomena,
                    # Not a rule input: the certificate's table.
                    "weather.table": [
                        ["观测站", f"{station.name}（{station.code}）"],
                        ["日期", wanted.isoformat()],
                        ["日降水量（毫米）", f"{observed.precipitation_mm:.1f}"],
                        ["日极大风速（米/秒）", f"{observed.max_wind_ms:.1f}"],
                        ["最高气温（℃）", f"{observed.temp_max_c:.1f}"],
                        ["最低气温（℃）", f"{observed.temp_min_c:.1f}"],
                        ["天气现象", observed.phenomena],
                    ],
                }
            )
        return facts


class CommitmentRecord:
    """Whether the applicant (the enterprise it files for, or the person) is excluded from
    commitment approval by a false commitment still in force."""

    spec = CONNECTORS["commitment_record"]

    def __init__(self, session: Session) -> None:
        self.session = session

    def lookup(self, request: LookupRequest) -> dict[str, Any]:
        from app.applications.models import CommitmentBreach  # the applications' own table

        if request.applicant_user_id is None or request.now is None:
            return _none(self.spec)
        who = (
            CommitmentBreach.enterprise_id.in_(
                select(RegistryEnterprise.id).where(
                    RegistryEnterprise.uscc == request.enterprise_uscc
                )
            )
            if request.enterprise_uscc
            else CommitmentBreach.user_id == request.applicant_user_id
        )
        found = self.session.scalar(
            select(CommitmentBreach.id).where(who, CommitmentBreach.excluded_until > request.now)
        )
        return {"applicant.commitment_excluded": found is not None}


def embedded_connectors(session: Session) -> dict[str, Connector]:
    return {
        "commitment_record": CommitmentRecord(session),
        "enterprise_registry": EnterpriseRegistry(session),
        "key_dischargers": KeyDischargers(session),
        "drainage_network": AreaLookup(
            session,
            "drainage_network",
            DRAINAGE_COVERAGE,
            "site.in_network_coverage",
            "site.network_area",
        ),
        "advertising_zones": AreaLookup(
            session,
            "advertising_zones",
            AD_RESTRICTED,
            "site.in_restricted_area",
            "site.restricted_area",
        ),
        "weather_archive": WeatherArchive(session),
    }


# -- over HTTP: the data-sharing platform ------------------------------------------------------

_KIND_TYPES: dict[str, tuple[type, ...]] = {
    "text": (str,),
    "integer": (int,),
    "number": (int, float),
    "date": (str,),
    "boolean": (bool,),
}


class HttpConnector(SignedJsonService):
    """One connector answered by the platform: POST /shared-data/<name> with the form fields it
    reads, the USCC and the day; the answer's `facts` are checked against the spec's types."""

    def __init__(self, spec: ConnectorSpec, session: requests.Session, **kwargs: Any) -> None:
        super().__init__(session, **kwargs)
        self.spec = spec

    def lookup(self, request: LookupRequest) -> dict[str, Any]:
        wanted = [name.removeprefix("form.") for name in self.spec.reads]
        payload = {
            "form": {key: request.form.get(key) for key in wanted},
            "uscc": request.enterprise_uscc,
            "today": request.today.isoformat(),
        }
        try:
            status, answer = self._client.post(
                f"/shared-data/{self.spec.name}", payload, service=self.spec.label
            )
        except VerificationError as error:
            raise ConnectorUnavailable(self.spec.name, type(error).__name__) from error
        facts = answer.get("facts")
        if status != 200 or not isinstance(facts, dict):
            raise ConnectorUnavailable(self.spec.name, "bad_answer")
        out = {}
        for field in self.spec.fields:
            value = facts.get(field.name)
            if value is not None and (
                not isinstance(value, _KIND_TYPES[field.kind])
                or (field.kind != "boolean" and isinstance(value, bool))
            ):
                raise ConnectorUnavailable(self.spec.name, "bad_answer")
            out[field.name] = value
        if isinstance(facts.get("weather.table"), list):
            out["weather.table"] = facts["weather.table"]
        return out


def http_connectors(
    session: requests.Session, *, base_url: str, app_id: str, secret: str, timeout: float
) -> dict[str, Connector]:
    return {
        name: HttpConnector(
            spec, session, base_url=base_url, app_id=app_id, secret=secret, timeout=timeout
        )
        for name, spec in CONNECTORS.items()
        if name not in LOCAL_ONLY
    }


def gather(
    connectors: Mapping[str, Connector], names: Sequence[str], request: LookupRequest
) -> tuple[dict[str, Any], list[str]]:
    """The facts of every named connector that answered, and the names of those that did not."""
    facts: dict[str, Any] = {}
    unavailable: list[str] = []
    for name in names:
        try:
            facts.update(connectors[name].lookup(request))
        except ConnectorUnavailable as error:
            # The reason only: requests carry a USCC and coordinates, nothing personal, but
            # the answer is not ours to log either.
            log.warning(
                "shared-data lookup failed", extra={"connector": name, "reason": error.reason}
            )
            unavailable.append(name)
    return facts, unavailable
