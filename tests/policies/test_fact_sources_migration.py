"""Migrations 0013 and 0014 on data written before them: accounts nobody checked are frozen,
and facts whose last change came from the enterprise itself become unverified (待核实)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import Flask
from sqlalchemy import create_engine, text

from app import create_app
from app.migrations_cli import upgrade_database

AT = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
HIGH_TECH_BIT = 1  # reference.TAG_BITS["高新技术企业"] as of 0014


def test_self_declared_facts_and_unchecked_accounts_are_held_back(tmp_path: Path) -> None:
    application: Flask = create_app("testing", DATABASE_URL=f"sqlite:///{tmp_path / 'before.db'}")
    upgrade_database(application, "0012_user_face_verification")
    engine = create_engine(application.config["DATABASE_URL"])
    with engine.begin() as connection:
        for enterprise_id, uscc in ((1, "91440113MA5XXXXX0G"), (2, "91440113MA5YYYYY0Q")):
            connection.execute(
                text(
                    "INSERT INTO registry_enterprises (id, uscc, name, legal_rep_name, status,"
                    " synced_at) VALUES (:id, :uscc, :name, '张三', '存续', :at)"
                ),
                {"id": enterprise_id, "uscc": uscc, "name": f"企业{enterprise_id}", "at": AT},
            )
            connection.execute(
                text(
                    "INSERT INTO enterprise_profiles (enterprise_id, employees, tag_bits,"
                    " updated_at, created_at) VALUES (:id, 80, :bits, :at, :at)"
                ),
                {"id": enterprise_id, "bits": HIGH_TECH_BIT, "at": AT},
            )
        changes = [
            (1, "import", '{"employees": [null, 10], "tags": [null, []]}'),
            (1, "self", '{"employees": [10, 80], "tags": [[], ["高新技术企业"]]}'),
            (2, "self", '{"employees": [null, 5]}'),
            (2, "import", '{"employees": [5, 80], "tags": [null, ["高新技术企业"]]}'),
        ]
        for enterprise_id, source, changed in changes:
            connection.execute(
                text(
                    "INSERT INTO enterprise_profile_changes (enterprise_id, source, changes,"
                    " created_at) VALUES (:id, :source, :changes, :at)"
                ),
                {"id": enterprise_id, "source": source, "changes": changed, "at": AT},
            )
        connection.execute(
            text("INSERT INTO users (openid, disabled, created_at) VALUES ('o1', 0, :at)"),
            {"at": AT},
        )
        connection.execute(
            text(
                "INSERT INTO policy_receiving_accounts (enterprise_id, bank_name, account_name,"
                " account_number_sealed, account_number_masked, confirmed_by_user_id,"
                " confirmed_at) VALUES (1, '某银行', '攻击者', 'x', '****9999', 1, :at)"
            ),
            {"at": AT},
        )

    upgrade_database(application)

    with engine.connect() as connection:
        profiles = dict(
            connection.execute(
                text(
                    "SELECT enterprise_id, unverified_fields || '/' || unverified_tag_bits"
                    " FROM enterprise_profiles"
                )
            ).all()
        )
        account = connection.execute(
            text("SELECT verified_by, frozen_reason FROM policy_receiving_accounts")
        ).one()
    assert profiles == {1: f"2/{HIGH_TECH_BIT}", 2: "0/0"}
    assert tuple(account) == ("unchecked", "unchecked_holder")
