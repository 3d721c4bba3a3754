"""Building the test schema from the project's migrations, as production does."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import text

from app.db import Base
from app.migrations_cli import upgrade_database
from app.models import import_all_models


def build_schema(app: Flask) -> None:
    """Drop whatever a previous run left and migrate an empty database to head."""
    import_all_models()
    engine = app.extensions["db"].engine
    Base.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade_database(app)
