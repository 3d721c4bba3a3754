"""CSV import of enterprise profiles from the registry feed: idempotent, rejects with reasons.

Columns: uscc, industry_code, town, established_on, employees, revenue_yuan, tags (tags
separated by "|" or "、"). Empty cells leave a field unknown. A row is applied only when it
is entirely valid; importing the same file twice changes nothing the second time.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.enterprises import errors as enterprise_errors
from app.enterprises.service import find_enterprise, normalise_uscc
from app.policies import profiles
from app.policies.errors import InvalidProfile

COLUMNS = ("uscc", "industry_code", "town", "established_on", "employees", "revenue_yuan", "tags")


@dataclass
class ImportReport:
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (line, uscc, reason)


def _parse(row: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in COLUMNS[1:]:
        if key not in row:
            continue
        raw = (row.get(key) or "").strip()
        if key == "tags":
            values[key] = [t.strip() for t in raw.replace("、", "|").split("|") if t.strip()]
            continue
        if raw == "":
            continue
        if key in ("employees", "revenue_yuan"):
            try:
                values[key] = int(raw)
            except ValueError:
                raise InvalidProfile("须为整数", field=key) from None
        elif key == "established_on":
            try:
                values[key] = dt.date.fromisoformat(raw)
            except ValueError:
                raise InvalidProfile("日期格式应为 YYYY-MM-DD", field=key) from None
        else:
            values[key] = raw
    return values


def import_rows(
    session: Session, rows: Iterable[dict[str, str]], *, now: dt.datetime, first_line: int = 2
) -> ImportReport:
    """Apply each valid row, collect the others with their reason (every value is checked
    before it is written: `profiles.clean` holds the limits the columns need)."""
    report = ImportReport()
    for line, row in enumerate(rows, start=first_line):
        report.read += 1
        raw_uscc = (row.get("uscc") or "").strip()
        try:
            uscc = normalise_uscc(raw_uscc)
        except enterprise_errors.UsccInvalid:
            report.rejected.append((line, raw_uscc, "统一社会信用代码格式或校验位错误"))
            continue
        enterprise = find_enterprise(session, uscc)
        if enterprise is None:
            report.rejected.append((line, uscc, "登记信息中无此企业"))
            continue
        try:
            values = profiles.clean(_parse(row), profiles.IMPORTED)
        except InvalidProfile as error:
            report.rejected.append((line, uscc, f"{error.details.get('field')}: {error.message}"))
            continue
        existed = session.get(profiles.EnterpriseProfile, enterprise.id) is not None
        profile = profiles.ensure_profile(session, enterprise, now=now)
        changes = profiles.update_profile(
            session, profile, values, source="import", user_id=None, now=now
        )
        if not existed:
            report.created += 1
        elif changes:
            report.updated += 1
        else:
            report.unchanged += 1
    return report


def import_csv(session: Session, path: str, *, now: dt.datetime) -> ImportReport:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return import_rows(session, csv.DictReader(handle), now=now)
