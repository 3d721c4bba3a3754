"""The demo registry: valid, realistic Panyu rows, loaded idempotently by USCC."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from stdnum.cn import uscc as uscc_number

from app.enterprises.models import RegistryEnterprise, RegistryStatus
from app.enterprises.registry import (
    PANYU_REGION,
    TOWNS,
    demo_id_number,
    generate_registry,
    load_registry,
    organisation_code,
)
from app.identity.realname import normalize_id_number
from app.security.crypto import FieldCipher
from tests.factories.identity import id_number_for


def _count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(RegistryEnterprise)) or 0


def test_generated_rows_have_valid_unique_panyu_usccs() -> None:
    rows = generate_registry(500, random.Random(7))

    usccs = [row["uscc"] for row in rows]
    assert len(rows) == 500 and len(set(usccs)) == 500
    assert len({row["name"] for row in rows}) == 500
    for row in rows:
        code = row["uscc"]
        assert uscc_number.is_valid(code)
        assert code[2:8] == PANYU_REGION
        # Characters 9-17 are an organisation code with its own GB 11714 check character.
        assert organisation_code(code[8:16]) == code[8:17]
        assert row["registered_town"] in TOWNS
        assert row["status"] in {s.value for s in RegistryStatus}
        assert 2 <= len(row["legal_rep_name"]) <= 3


def test_the_generated_mix_looks_like_a_district_register() -> None:
    rows = generate_registry(2000, random.Random(11))

    sole_traders = [r for r in rows if r["uscc"].startswith("92")]
    closed = [r for r in rows if not RegistryStatus(r["status"]).is_active]
    assert 0.1 < len(sole_traders) / len(rows) < 0.3
    assert all(r["entity_type"] == "个体工商户" for r in sole_traders)
    assert 0.03 < len(closed) / len(rows) < 0.2
    assert {r["registered_town"] for r in rows} == set(TOWNS)
    assert {"C", "F", "H"} <= {r["industry_code"] for r in rows}


def test_generation_is_repeatable_for_a_seed() -> None:
    assert generate_registry(50, random.Random(3)) == generate_registry(50, random.Random(3))
    assert generate_registry(50, random.Random(3)) != generate_registry(50, random.Random(4))


def test_loading_twice_updates_in_place(session: Session) -> None:
    rows = generate_registry(30, random.Random(5))

    assert load_registry(session, rows) == 30
    rows[0]["name"] = "广州市番禺区更名后贸易有限公司"
    rows[0]["status"] = "注销"
    assert load_registry(session, rows) == 30

    assert _count(session) == 30
    changed = session.scalars(
        select(RegistryEnterprise).where(RegistryEnterprise.uscc == rows[0]["uscc"])
    ).one()
    assert changed.name == "广州市番禺区更名后贸易有限公司"
    assert changed.status == RegistryStatus.CANCELLED
    assert not changed.is_active


def test_loading_refuses_a_row_with_a_bad_uscc(session: Session) -> None:
    rows = generate_registry(3, random.Random(6))
    rows[2]["uscc"] = rows[2]["uscc"][:-1] + ("0" if rows[2]["uscc"][-1] != "0" else "1")

    with pytest.raises(ValueError, match="row 2"):
        load_registry(session, rows)


def test_a_legal_rep_id_number_is_kept_only_as_its_blind_index(
    session: Session, field_cipher: FieldCipher
) -> None:
    row = generate_registry(1, random.Random(8))[0]
    number = id_number_for(order=901)

    with pytest.raises(ValueError, match="cipher"):
        load_registry(session, [{**row, "legal_rep_id_number": number}])
    load_registry(session, [{**row, "legal_rep_id_number": number}], cipher=field_cipher)

    stored = session.scalars(select(RegistryEnterprise)).one()
    assert stored.legal_rep_id_index == field_cipher.blind_index(number, context="users.id_number")
    assert number not in str(vars(stored))


def test_demo_legal_representatives_carry_valid_id_numbers(
    session: Session, field_cipher: FieldCipher
) -> None:
    rng = random.Random(9)
    numbers = [demo_id_number(rng) for _ in range(200)]
    for number in numbers:
        normalize_id_number(number, today=dt.date(2026, 12, 1))  # raises if malformed
    rows = [
        {**row, "legal_rep_id_number": number}
        for row, number in zip(generate_registry(5, random.Random(10)), numbers, strict=False)
    ]
    load_registry(session, rows, cipher=field_cipher)
    stored = session.scalars(select(RegistryEnterprise)).all()
    assert all(row.legal_rep_id_index for row in stored)
