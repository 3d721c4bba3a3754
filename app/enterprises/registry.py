"""The embedded enterprise registry: demo rows, and loading rows into `registry_enterprises`.

A real deployment replaces the demo rows with the market-regulation registry's feed and loads
them with the same `load_registry` (an idempotent upsert by USCC). The registry is the
authority on who an enterprise's legal representative is: a row that names another person
ends the old one's power here, in the load's own transaction.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from sqlalchemy import Executable, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from stdnum.cn import ric
from stdnum.cn import uscc as uscc_number

from app.calendar import local_day
from app.db import utcnow
from app.enterprises.models import RegistryEnterprise, RegistryStatus
from app.enterprises.service import comparable_name, legal_rep_changed_in_registry
from app.identity.realname import ID_NUMBER_CONTEXT, normalize_id_number
from app.security.crypto import FieldCipher

PANYU_REGION = "440113"  # 广州市番禺区

TOWNS = (
    "市桥街", "沙头街", "东环街", "桥南街", "小谷围街", "大石街", "洛浦街", "石壁街",
    "钟村街", "大龙街", "沙湾街", "南村镇", "新造镇", "化龙镇", "石楼镇", "石碁镇",
)  # fmt: skip

# (GB/T 4754 section, industry, business words for a company name, relative frequency).
# Panyu's mix: jewellery and lighting/audio manufacturing, trade, catering and lodging.
INDUSTRIES: tuple[tuple[str, str, tuple[str, ...], int], ...] = (
    ("C", "制造业", ("珠宝首饰", "灯光音响", "五金制品", "服装", "电子科技", "家具"), 22),
    ("F", "批发和零售业", ("贸易", "商贸", "食品贸易", "建材"), 20),
    ("H", "住宿和餐饮业", ("餐饮管理", "酒店管理", "饮食"), 14),
    ("I", "信息传输、软件和信息技术服务业", ("网络科技", "信息技术", "软件"), 10),
    ("L", "租赁和商务服务业", ("企业管理咨询", "商务服务", "物业管理"), 10),
    ("M", "科学研究和技术服务业", ("生物科技", "检测技术", "工程设计"), 6),
    ("G", "交通运输、仓储和邮政业", ("物流", "货运代理", "供应链管理"), 8),
    ("E", "建筑业", ("建筑工程", "装饰工程", "园林绿化"), 6),
    ("R", "文化、体育和娱乐业", ("文化传播", "体育发展", "影视"), 4),
)

# Sole traders (个体工商户): shop kinds, with the industry they belong to.
SHOPS: tuple[tuple[str, str, str], ...] = (
    ("H", "住宿和餐饮业", "粉面店"),
    ("H", "住宿和餐饮业", "烧腊店"),
    ("H", "住宿和餐饮业", "茶餐厅"),
    ("H", "住宿和餐饮业", "民宿"),
    ("F", "批发和零售业", "便利店"),
    ("F", "批发和零售业", "五金店"),
    ("F", "批发和零售业", "水果店"),
    ("O", "居民服务、修理和其他服务业", "理发店"),
    ("O", "居民服务、修理和其他服务业", "汽车维修店"),
)

_TRADE_NAME_CHARS = "鸿盈粤华骏恒金宏德创佳顺嘉锦明汇信瑞晟泰丰源安兴联新达宝卓越昊俊"
_SURNAMES = "陈李黄梁张林刘吴何罗郭麦冯谭邓钟叶苏卢周曾潘伍关简区骆"
_GIVEN_CHARS = "伟强敏静丽华明杰志军芳燕玲锦家俊嘉颖思婷文海健荣少永卓宇洁咏诗浩泽彬怡"

# Registry status mix of a district's register: mostly operating, some closed.
_STATUSES = (
    (RegistryStatus.EXISTING, 85),
    (RegistryStatus.OPERATING, 5),
    (RegistryStatus.CANCELLED, 6),
    (RegistryStatus.REVOKED, 3),
    (RegistryStatus.SUSPENDED, 1),
)
_COMPANY_TYPES = (
    ("有限责任公司（自然人投资或控股）", 60),
    ("有限责任公司（自然人独资）", 30),
    ("股份有限公司（非上市、自然人投资或控股）", 4),
    ("有限责任公司（法人独资）", 6),
)
_ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_FIRST_DAY = dt.date(1995, 1, 1)
_DAYS = (dt.date(2024, 12, 31) - _FIRST_DAY).days


def organisation_code(body: str) -> str:
    """The 9-character organisation code (GB 11714): 8 digits and their check character."""
    total = sum(int(c) * w for c, w in zip(body, _ORG_CODE_WEIGHTS, strict=True))
    check = 11 - total % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


def make_uscc(entity_digits: str, region: str, org_body: str) -> str:
    """A USCC (GB 32100) from its parts, both check characters computed."""
    partial = entity_digits + region + organisation_code(org_body)
    return partial + uscc_number.calc_check_digit(partial)


def _weighted(rng: random.Random, options: Iterable[tuple[Any, int]]) -> Any:
    values, weights = zip(*options, strict=True)
    return rng.choices(values, weights=weights)[0]


def _person_name(rng: random.Random) -> str:
    given = rng.choice(_GIVEN_CHARS)
    if rng.random() < 0.7:
        given += rng.choice(_GIVEN_CHARS.replace(given, ""))
    return rng.choice(_SURNAMES) + given


def demo_id_number(rng: random.Random) -> str:
    """A well-formed resident ID number of someone born in Panyu (440113) 1960-1999: for demo
    legal representatives, whom a real registry feed identifies by their ID numbers."""
    born = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(40 * 365))
    body = f"440113{born:%Y%m%d}{rng.randrange(1000):03d}"
    return body + ric.calc_check_digit(body + "0")


def _trade_name(rng: random.Random) -> str:
    first = rng.choice(_TRADE_NAME_CHARS)
    return first + rng.choice(_TRADE_NAME_CHARS.replace(first, ""))


def generate_registry(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """`count` demo registry rows of Panyu enterprises, USCCs unique and valid.

    Deterministic for a seeded `rng`. About one row in five is a sole trader (USCC 92...).
    """
    rows: list[dict[str, Any]] = []
    seen_uscc: set[str] = set()
    seen_names: set[str] = set()
    attempts = 0
    while len(rows) < count:
        attempts += 1
        if attempts > 50 * count + 1000:
            raise ValueError(f"cannot make {count} distinct demo enterprises")
        town = rng.choice(TOWNS)
        legal_rep = _person_name(rng)
        if rng.random() < 0.2:
            section, industry, shop = rng.choice(SHOPS)
            entity = "92"
            entity_type = "个体工商户"
            name = f"广州市番禺区{town[:-1]}{legal_rep[1:]}{shop}"
            capital = rng.randrange(1, 31) * 10_000
        else:
            section, industry, words, _ = _weighted(rng, ((row, row[3]) for row in INDUSTRIES))
            entity = "91"
            entity_type = _weighted(rng, _COMPANY_TYPES)
            prefix = "广州市番禺区" if rng.random() < 0.5 else "广州"
            name = f"{prefix}{_trade_name(rng)}{rng.choice(words)}有限公司"
            capital = int(rng.choice((10, 30, 50, 100, 200, 300, 500, 1000, 2000, 5000))) * 10_000
        uscc = make_uscc(entity, PANYU_REGION, f"{rng.randrange(10**8):08d}")
        if uscc in seen_uscc or name in seen_names:
            continue  # the registry has no two alike
        seen_uscc.add(uscc)
        seen_names.add(name)
        rows.append(
            {
                "uscc": uscc,
                "name": name,
                "legal_rep_name": legal_rep,
                "status": _weighted(rng, _STATUSES).value,
                "entity_type": entity_type,
                "industry_code": section,
                "industry": industry,
                "registered_capital_yuan": capital,
                "registered_town": town,
                "established_on": _FIRST_DAY + dt.timedelta(days=rng.randrange(_DAYS)),
            }
        )
    return rows


_COLUMNS = (
    "name",
    "legal_rep_name",
    "status",
    "entity_type",
    "industry_code",
    "industry",
    "registered_capital_yuan",
    "registered_town",
    "established_on",
)


def _clean_row(
    row: Mapping[str, Any], *, index: int, cipher: FieldCipher | None, now: dt.datetime
) -> dict[str, Any]:
    uscc = row.get("uscc")
    if not isinstance(uscc, str) or not uscc_number.is_valid(uscc):
        raise ValueError(f"registry row {index}: invalid USCC")
    clean: dict[str, Any] = {"uscc": uscc_number.compact(uscc), "synced_at": now}
    for column in _COLUMNS:
        clean[column] = row.get(column)
    if not clean["name"] or not clean["legal_rep_name"]:
        raise ValueError(f"registry row {index}: name and legal_rep_name are required")
    clean["status"] = RegistryStatus(clean["status"] or RegistryStatus.EXISTING).value
    if isinstance(clean["established_on"], str):
        clean["established_on"] = dt.date.fromisoformat(clean["established_on"])
    id_number = row.get("legal_rep_id_number")
    clean["legal_rep_id_index"] = None
    if id_number:
        if cipher is None:
            raise ValueError("rows carry legal_rep_id_number: pass the cipher to index them")
        number, _ = normalize_id_number(str(id_number), today=local_day(now))
        clean["legal_rep_id_index"] = cipher.blind_index(number, context=ID_NUMBER_CONTEXT)
    return clean


_UPDATED_ON_CONFLICT = (*_COLUMNS, "legal_rep_id_index", "synced_at")


def _upsert(dialect: str, rows: list[dict[str, Any]]) -> Executable:
    """INSERT ... ON CONFLICT (uscc) DO UPDATE, in the dialect's own spelling."""
    table: Table = RegistryEnterprise.__table__  # type: ignore[assignment]
    if dialect == "postgresql":
        pg = postgresql.insert(table).values(rows)
        return pg.on_conflict_do_update(
            index_elements=[table.c.uscc],
            set_={column: pg.excluded[column] for column in _UPDATED_ON_CONFLICT},
        )
    if dialect == "sqlite":
        lite = sqlite.insert(table).values(rows)
        return lite.on_conflict_do_update(
            index_elements=[table.c.uscc],
            set_={column: lite.excluded[column] for column in _UPDATED_ON_CONFLICT},
        )
    raise RuntimeError(f"load_registry supports PostgreSQL and SQLite, not {dialect}")


class _Held(NamedTuple):
    """What a stored row says that a new row may change with consequences."""

    enterprise_id: int
    name: str
    id_index: str | None
    active: bool


def _rows_held(session: Session, usccs: list[str]) -> dict[str, _Held]:
    """The legal representatives and statuses of the stored rows, by USCC."""
    held = session.execute(
        select(
            RegistryEnterprise.uscc,
            RegistryEnterprise.id,
            RegistryEnterprise.legal_rep_name,
            RegistryEnterprise.legal_rep_id_index,
            RegistryEnterprise.status,
        ).where(RegistryEnterprise.uscc.in_(usccs))
    )
    return {
        uscc: _Held(id_, name, index, RegistryStatus(status).is_active)
        for uscc, id_, name, index, status in held
    }


def _names_another_legal_rep(held: _Held, row: Mapping[str, Any]) -> bool:
    """Whether a clean row names another legal representative than the stored row did.

    By ID number where both carry one (a corrected spelling of the same person's name is no
    change), else by name: a row that drops the ID number but keeps the name is an incomplete
    feed, not a new representative.
    """
    index: str | None = row["legal_rep_id_index"]
    if held.id_index is not None and index is not None:
        return held.id_index != index
    return comparable_name(held.name) != comparable_name(row["legal_rep_name"])


def load_registry(
    session: Session,
    rows: Iterable[Mapping[str, Any]],
    *,
    cipher: FieldCipher | None = None,
    now: dt.datetime | None = None,
    chunk_size: int = 500,
) -> int:
    """Insert or update registry rows by USCC (idempotent); returns how many rows were written.

    A row may carry `legal_rep_id_number` (a real feed does); it is stored only as a blind
    index, for which the `cipher` is needed. A row naming another legal representative than
    the stored one ends the old one's binding, with their agents, and freezes the receiving
    account (`service.legal_rep_changed_in_registry`); one whose status starts or stops being
    active (注销, 吊销, 停业, ...) is re-matched against the policies. Flushes, never commits.
    """
    moment = now or utcnow()
    session.flush()
    dialect = session.get_bind().dialect.name
    written = 0
    batch: list[dict[str, Any]] = []
    changed: list[int] = []
    restatused: list[int] = []  # became active or inactive (注销, 吊销, 停业, ...)

    def flush_batch() -> None:
        nonlocal written
        if not batch:
            return
        # Deduplicate within the batch: ON CONFLICT may not touch one row twice in a statement.
        unique = list({row["uscc"]: row for row in batch}.values())
        held = _rows_held(session, [row["uscc"] for row in unique])
        session.execute(_upsert(dialect, unique))
        for row in unique:
            before = held.get(row["uscc"])
            if before is not None and _names_another_legal_rep(before, row):
                changed.append(before.enterprise_id)
            if before is not None and before.active != RegistryStatus(row["status"]).is_active:
                restatused.append(before.enterprise_id)
        written += len(unique)
        batch.clear()

    for index, row in enumerate(rows):
        batch.append(_clean_row(row, index=index, cipher=cipher, now=moment))
        if len(batch) >= chunk_size:
            flush_batch()
    flush_batch()
    # Rows already in the session were changed behind its back; reload them on next access.
    for instance in list(session.identity_map.values()):
        if isinstance(instance, RegistryEnterprise):
            session.expire(instance)
    for enterprise_id in dict.fromkeys(changed):  # once each, though a feed repeats a row
        enterprise = session.get(RegistryEnterprise, enterprise_id)
        assert enterprise is not None  # written above, in this transaction
        legal_rep_changed_in_registry(session, enterprise, now=moment)
    if restatused:
        # Policies follow the registry: a company that ceased is no longer matched (its waiting
        # pushes are cancelled), one that resumed is matched again. Imported here: the policies
        # domain builds on this module (demo USCCs).
        from app.policies.matching import rematch_enterprise

        for enterprise_id in dict.fromkeys(restatused):
            rematch_enterprise(session, enterprise_id, now=moment)
    return written
