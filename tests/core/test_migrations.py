"""The migrations build exactly the schema the models describe, and can be undone."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy import create_engine, inspect

from app.db import Base
from app.migrations_cli import alembic_config, upgrade_database


def test_models_and_migrations_agree(app: Flask) -> None:
    engine = app.extensions["db"].engine
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == [], f"models changed without a migration: {differences}"


def test_downgrade_to_base_and_upgrade_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from app import create_app

    fresh = create_app("testing", DATABASE_URL=f"sqlite:///{tmp_path / 'mig.db'}")
    upgrade_database(fresh)
    engine = create_engine(fresh.config["DATABASE_URL"])
    assert "users" in inspect(engine).get_table_names()
    command.downgrade(alembic_config(fresh), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade_database(fresh)
    assert "audit_entries" in inspect(engine).get_table_names()
