"""What each shared-data connector (数据共享) answers: its facts, their types and labels.

A matter's rules name the connectors they need; the facts each one returns are fields of the
rule language (`enterprise.status`, `site.in_restricted_area`, ...). The catalogue is static so
that a matter version's rules are checked when it is published, before any lookup runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.rules.expressions import Field


@dataclass(frozen=True)
class ConnectorSpec:
    name: str
    label: str  # shown when it failed: "企业登记信息查询超时"
    fields: tuple[Field, ...]
    reads: tuple[str, ...]  # the form fields it needs (coordinates, a date)


CONNECTORS: dict[str, ConnectorSpec] = {
    spec.name: spec
    for spec in (
        ConnectorSpec(
            "enterprise_registry",
            "市场主体登记信息",
            (
                Field("enterprise.status", "text", "登记状态"),
                Field("enterprise.name", "text", "企业名称"),
                Field("enterprise.industry_code", "text", "行业代码"),
                Field("enterprise.town", "text", "注册镇街"),
            ),
            (),
        ),
        ConnectorSpec(
            "key_dischargers",
            "重点排污单位名录",
            (Field("discharger.is_key", "boolean", "列入重点排污单位名录"),),
            (),
        ),
        ConnectorSpec(
            "drainage_network",
            "排水管网覆盖范围",
            (
                Field("site.in_network_coverage", "boolean", "位于排水管网覆盖范围内"),
                Field("site.network_area", "text", "所属污水处理系统"),
            ),
            ("form.longitude", "form.latitude"),
        ),
        ConnectorSpec(
            "advertising_zones",
            "户外广告禁设区域",
            (
                Field("site.in_restricted_area", "boolean", "位于户外广告禁设区域内"),
                Field("site.restricted_area", "text", "所在禁设区域"),
            ),
            ("form.longitude", "form.latitude"),
        ),
        ConnectorSpec(
            # The district's own record, never an outside service: an applicant whose
            # commitment an inspection found false is excluded for a while (告知承诺信用).
            "commitment_record",
            "告知承诺信用记录",
            (Field("applicant.commitment_excluded", "boolean", "因不实承诺暂停适用告知承诺"),),
            (),
        ),
        ConnectorSpec(
            "weather_archive",
            "气象观测资料",
            (
                Field("weather.observed", "boolean", "观测资料存在"),
                Field("weather.station", "text", "观测站"),
                Field("weather.distance_km", "number", "距观测站", "公里"),
                Field("weather.precipitation_mm", "number", "日降水量", "毫米"),
                Field("weather.max_wind_ms", "number", "日极大风速", "米/秒"),
                Field("weather.temp_max_c", "number", "日最高气温", "℃"),
                Field("weather.temp_min_c", "number", "日最低气温", "℃"),
                Field("weather.phenomena", "text", "天气现象"),
            ),
            ("form.date", "form.longitude", "form.latitude"),
        ),
    )
}
