"""The matter catalogue: matter definitions kept as files in `data/matters/<code>/v<N>.json`,
published into the database as immutable versions, browsed and searched by everyone.

A definition is checked against `MATTER_FILE_SCHEMA` and its form against the JSON Schema
meta-schema before anything is written. The files are loaded by `flask matters load`; an admin
may publish a further version through the API. A published version never changes: a file whose
content differs from its published version is refused (publish a new version instead).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
from sqlalchemy import Select, func, inspect, or_, select
from sqlalchemy.orm import Session

from app.applications import workflow
from app.audit.service import Actor
from app.audit.service import record as audit
from app.matters import forms, rules
from app.matters.errors import (
    MatterInvalid,
    MatterNotFound,
    MatterVersionConflict,
    MatterVersionNotFound,
)
from app.matters.models import Matter, MatterVersion
from app.organisation.models import Department
from app.seals.templates import TEMPLATES
from app.security.digests import canonical_sha256

KINDS = ("行政许可", "行政确认", "行政给付", "公共服务", "其他行政权力")
FLAGS = ("全流程网办", "零跑动", "秒批", "告知承诺", "容缺")
APPLICANTS = ("citizen", "enterprise", "both")
_VERSION_FILE = re.compile(r"v([1-9][0-9]{0,3})\.json")

_TEXT = {"type": "string", "minLength": 1, "maxLength": 500}
MATTER_FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "code",
        "name",
        "department",
        "kind",
        "applicant",
        "limits",
        "flags",
        "guide",
        "form",
        "licence",
    ],
    "properties": {
        "code": {"type": "string", "pattern": "^[A-Z0-9][A-Z0-9-]{2,63}$"},
        "version": {"type": "integer", "minimum": 1},  # in files; the API assigns the next
        "name": {"type": "string", "minLength": 2, "maxLength": 128},
        "department": {"type": "string", "minLength": 1, "maxLength": 32},
        "kind": {"enum": list(KINDS)},
        "applicant": {"enum": list(APPLICANTS)},
        "limits": {
            "type": "object",
            "additionalProperties": False,
            "required": ["statutory_days", "promised_days"],
            "properties": {
                # Working days; 0 promised days: decided at once (秒批) when every rule holds.
                "statutory_days": {"type": "integer", "minimum": 1, "maximum": 365},
                "promised_days": {"type": "integer", "minimum": 0, "maximum": 365},
            },
        },
        "flags": {"type": "array", "uniqueItems": True, "items": {"enum": list(FLAGS)}},
        "guide": {
            "type": "object",
            "additionalProperties": False,
            "required": ["basis", "conditions", "materials", "fees", "process"],
            "properties": {
                "basis": {"type": "array", "minItems": 1, "items": _TEXT},
                "conditions": {"type": "array", "items": _TEXT},
                "materials": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["id", "name", "key", "required"],
                        "properties": {
                            "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,31}$"},
                            "name": _TEXT,
                            # A key material can never be missing (容缺 covers the others).
                            "key": {"type": "boolean"},
                            "required": {"type": "boolean"},
                            # 免证办: the licence type (document template) that may stand in.
                            "licence_type": {"type": "string", "maxLength": 64},
                            # upload (default); form: a box the applicant ticks and signs;
                            # identity: the verified real name stands in for it.
                            "provided_by": {"enum": ["upload", "form", "identity"]},
                        },
                    },
                },
                "fees": _TEXT,
                "process": {"type": "array", "minItems": 1, "items": _TEXT},
            },
        },
        "form": {"type": "object"},
        "rules": rules.RULES_SCHEMA,
        # 告知承诺: a permit granted on the applicant's commitment is inspected within
        # `inspection_days` working days; a false commitment excludes the holder from
        # commitment approval for `exclusion_days`.
        "commitment": {
            "type": "object",
            "additionalProperties": False,
            "required": ["inspection_days", "exclusion_days"],
            "properties": {
                "inspection_days": {"type": "integer", "minimum": 1, "maximum": 365},
                "exclusion_days": {"type": "integer", "minimum": 1, "maximum": 3650},
            },
        },
        # 容缺: missing non-key materials are promised within `supply_days` working days
        # (TOLERANCE_DEFAULT_DAYS when absent); the applicant is reminded a day before.
        "tolerance": {
            "type": "object",
            "additionalProperties": False,
            "required": ["supply_days"],
            "properties": {"supply_days": {"type": "integer", "minimum": 1, "maximum": 60}},
        },
        "licence": {
            "type": "object",
            "additionalProperties": False,
            "required": ["title", "valid_days"],
            "properties": {
                "title": {"type": "string", "minLength": 2, "maxLength": 64},
                "valid_days": {"type": ["integer", "null"], "minimum": 1, "maximum": 3650},
                # A permit for a period the applicant chose: valid through the form's date
                # field named here (e.g. "form.end_date") instead of `valid_days` from issue.
                "valid_through": {"type": "string", "pattern": "^form\\.[a-z_0-9]+$"},
                # The document template the department's seal signs, and how its fields are
                # filled: "{form.address}" formats facts; {"fact": "weather.table"} copies one.
                "template": {"type": "string", "minLength": 1, "maxLength": 64},
                "data": {
                    "type": "object",
                    "additionalProperties": {
                        "oneOf": [
                            {"type": "string", "maxLength": 200},
                            {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["fact"],
                                "properties": {"fact": {"type": "string"}},
                            },
                        ]
                    },
                },
            },
        },
    },
}
_FILE_VALIDATOR = jsonschema_rs.validator_for(MATTER_FILE_SCHEMA)


@dataclass(frozen=True)
class Published:
    version: MatterVersion
    created: bool  # False: that content was already the published version


def _problems(content: Any) -> dict[str, str]:
    problems = {
        ".".join(str(p) for p in error.instance_path) or "matter": str(error.message)
        for error in _FILE_VALIDATOR.iter_errors(content)
    }
    if not problems:
        try:
            workflow.for_kind(content["kind"])
        except workflow.WorkflowInvalid:
            problems["kind"] = "no workflow handles matters of this kind"
        form_problem = forms.check_schema(content["form"])
        if form_problem:
            problems["form"] = form_problem
        if content["form"].get("type") != "object":
            problems["form.type"] = "an application form is an object"
        if not problems and "rules" in content:
            problems.update(_rule_problems(content))
        problems.update(_licence_problems(content["licence"], content["form"]))
    return problems


def _rule_problems(content: Mapping[str, Any]) -> dict[str, str]:
    """Why the version's rules cannot be published: they do not parse, or a shipped test case
    does not give its expected decision."""
    try:
        rule_set = rules.parse(content["rules"], content["form"])
    except rules.RulesInvalid as error:
        return error.problems
    return {f"rules.tests.{name}": failure for name, failure in rules.run_tests(rule_set).items()}


def _licence_problems(licence: Mapping[str, Any], form: Mapping[str, Any]) -> dict[str, str]:
    through = licence.get("valid_through")
    if through is not None:
        field = form.get("properties", {}).get(through.removeprefix("form."), {})
        if field.get("format") != "date" or through.removeprefix("form.") not in form.get(
            "required", []
        ):
            return {"licence.valid_through": f"{through} is not a required date field of the form"}
    template = licence.get("template")
    if template is None:
        return {}
    if template not in TEMPLATES:
        return {"licence.template": f"unknown document template {template}"}
    missing = [
        f.key
        for f in TEMPLATES[template].fields
        if f.required and f.key not in licence.get("data", {})
    ]
    return {"licence.data": f"the template needs {', '.join(missing)}"} if missing else {}


def _digest(content: Mapping[str, Any]) -> str:
    return canonical_sha256({key: value for key, value in content.items() if key != "version"})


def publish(
    session: Session,
    content: Mapping[str, Any],
    *,
    staff_id: int | None,
    now: dt.datetime,
) -> Published:
    """Publish `content` as the matter's next version (or as its `version`, from a file)."""
    problems = _problems(content)
    if problems:
        raise MatterInvalid(fields=problems)
    department = session.scalars(
        select(Department).where(Department.code == content["department"])
    ).first()
    if department is None:
        raise MatterInvalid(fields={"department": "unknown department code"})
    digest = _digest(content)
    matter = session.scalars(select(Matter).where(Matter.code == content["code"])).first()
    wanted = content.get("version")
    if matter is not None:
        existing = session.scalars(
            select(MatterVersion).where(
                MatterVersion.matter_id == matter.id,
                MatterVersion.version == (wanted or matter.current_version),
            )
        ).first()
        if existing is not None and existing.content_sha256 == digest:
            return Published(existing, created=False)
        if wanted is not None and existing is not None:
            raise MatterVersionConflict(code=matter.code, version=wanted)
        if wanted is not None and wanted != matter.current_version + 1:
            raise MatterVersionConflict("事项版本须依次递增", expected=matter.current_version + 1)
    elif wanted not in (None, 1):
        raise MatterVersionConflict("新事项的第一个版本须为 1", expected=1)
    version_number = matter.current_version + 1 if matter else 1
    if matter is None:
        matter = Matter(code=content["code"], current_version=version_number, created_at=now)
        session.add(matter)
    matter.name = content["name"]
    matter.department_id = department.id
    matter.kind = content["kind"]
    matter.applicant = content["applicant"]
    matter.flags_text = "," + "".join(f"{flag}," for flag in content["flags"])
    matter.current_version = version_number
    matter.updated_at = now
    session.flush()
    version = MatterVersion(
        matter_id=matter.id,
        version=version_number,
        content={**content, "version": version_number},
        content_sha256=digest,
        published_by=staff_id,
        published_at=now,
    )
    session.add(version)
    session.flush()
    audit(
        session,
        "matter.published",
        actor=Actor("staff", staff_id) if staff_id else Actor.system(),
        now=now,
        subject_type="matter",
        subject_id=matter.id,
        details={"code": matter.code, "version": version_number, "sha256": digest},
    )
    return Published(version, created=True)


def version_files(directory: Path) -> list[tuple[Path, int]]:
    """Every `<code>/v<N>.json` under `directory`, each matter's versions in order."""
    found = []
    for path in sorted(directory.glob("*/v*.json")):
        matched = _VERSION_FILE.fullmatch(path.name)
        if matched:
            found.append((path, int(matched.group(1))))
    return sorted(found, key=lambda item: (item[0].parent.name, item[1]))


def load_directory(session: Session, directory: Path, *, now: dt.datetime) -> list[Published]:
    """Publish every version file not yet published; refuse one that differs from its row."""
    results = []
    for path, number in version_files(directory):
        content = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(content, dict) or content.get("version") != number:
            raise MatterInvalid(f"{path}: 文件名与 version 不一致", file=str(path))
        if content.get("code") != path.parent.name:
            raise MatterInvalid(f"{path}: 目录名须为事项编码", file=str(path))
        results.append(publish(session, content, staff_id=None, now=now))
    return results


def search(
    *,
    department: str | None = None,
    flag: str | None = None,
    kind: str | None = None,
    applicant: str | None = None,
    keyword: str | None = None,
) -> Select[Any]:
    """The catalogue's matters matching every filter given, by code (joined to their
    departments, which `page` reads alongside)."""
    query = (
        select(Matter).join(Department, Department.id == Matter.department_id).order_by(Matter.code)
    )
    if department:
        query = query.where(Department.code == department)
    if flag:
        query = query.where(Matter.flags_text.contains(f",{flag},", autoescape=True))
    if kind:
        query = query.where(Matter.kind == kind)
    if applicant:
        query = query.where(Matter.applicant.in_((applicant, "both")))
    if keyword:
        query = query.where(
            or_(
                Matter.name.contains(keyword, autoescape=True),
                Matter.code.contains(keyword.upper(), autoescape=True),
            )
        )
    return query


def page(
    session: Session, query: Select[Any], *, offset: int, limit: int
) -> tuple[list[tuple[Matter, Department]], int]:
    """One page of a search, each matter with its department, and how many match in all."""
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.add_columns(Department).offset(offset).limit(limit)).all()
    found: list[tuple[Matter, Department]] = [(row[0], row[1]) for row in rows]
    return found, total


def get_matter(session: Session, code: str) -> Matter:
    matter = session.scalars(select(Matter).where(Matter.code == code)).first()
    if matter is None:
        raise MatterNotFound(code=code)
    return matter


_RULE_SETS: dict[str, rules.RuleSet] = {}


def rule_set_of(version: MatterVersion) -> rules.RuleSet | None:
    """The version's parsed rules (None for a matter without any); parsed once per content,
    which never changes once published."""
    raw = version.content.get("rules")
    if raw is None:
        return None
    found = _RULE_SETS.get(version.content_sha256)
    if found is None:
        found = _RULE_SETS[version.content_sha256] = rules.parse(raw, version.content["form"])
    return found


# session.info key: the numbered versions a session has loaded, by (code, version).
_LOADED_VERSIONS = "matters.loaded_versions"


def get_with_version(
    session: Session, matter_id: int, version: int
) -> tuple[Matter, MatterVersion]:
    """A matter and one of its numbered versions in one query (an application's, which names
    both): what submitting asks for first. The version joins the session's cache as with
    `get_version`."""
    loaded: dict[tuple[str, int], MatterVersion] = session.info.setdefault(_LOADED_VERSIONS, {})
    held = session.identity_map.get(session.identity_key(Matter, matter_id))
    if isinstance(held, Matter):
        cached = _held_version(session, loaded, held.code, version)
        if cached is not None:
            return held, cached
    row = session.execute(
        select(Matter, MatterVersion)
        .join(MatterVersion, MatterVersion.matter_id == Matter.id)
        .where(Matter.id == matter_id, MatterVersion.version == version)
    ).first()
    if row is None:
        matter = session.get(Matter, matter_id)
        if matter is None:
            raise MatterNotFound(code=str(matter_id))
        raise MatterVersionNotFound(code=matter.code, version=version)
    matter, found = row
    loaded[(matter.code, version)] = found
    return matter, found


def remember_version(session: Session, matter: Matter, version: MatterVersion) -> None:
    """Keep a version the caller read with its matter (a submission reads both with the
    application) for the session's later asks, as `get_with_version` keeps the versions it
    reads."""
    loaded: dict[tuple[str, int], MatterVersion] = session.info.setdefault(_LOADED_VERSIONS, {})
    loaded[(matter.code, version.version)] = version


def _held_version(
    session: Session, loaded: dict[tuple[str, int], MatterVersion], code: str, number: int
) -> MatterVersion | None:
    cached = loaded.get((code, number))
    # Only while it is still this session's row: not after a rollback removed it, nor once
    # the session has closed.
    if cached is not None and inspect(cached).persistent and cached in session:
        return cached
    return None


def get_version(session: Session, code: str, version: int | None = None) -> MatterVersion:
    """A version of the matter; its current one when `version` is None.

    A numbered version is looked up once per session: a published version never changes, and
    one request (submit, its deadlines, its answer) asks for the application's version several
    times. The current version is always read afresh, since publishing moves it.
    """
    loaded: dict[tuple[str, int], MatterVersion] = session.info.setdefault(_LOADED_VERSIONS, {})
    if version is None:
        number = get_matter(session, code).current_version
    else:
        number = version
        cached = _held_version(session, loaded, code, number)
        if cached is not None:
            return cached
    found = session.scalars(
        select(MatterVersion)
        .join(Matter, Matter.id == MatterVersion.matter_id)
        .where(Matter.code == code, MatterVersion.version == number)
    ).first()
    if found is None:
        if version is not None:
            get_matter(session, code)  # MATTER_NOT_FOUND rather than a missing version
        raise MatterVersionNotFound(code=code, version=number)
    # The current version read afresh is also that numbered version, for the later asks.
    loaded[(code, number)] = found
    return found
