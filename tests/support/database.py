"""Building the test schema from the project's migrations."""

from __future__ import annotations

from flask import Flask

from app.db import Base
from app.models import import_all_models


def build_schema(app: Flask) -> None:
    """Drop whatever a previous run left and create the schema afresh."""
    import_all_models()
    engine = app.extensions["db"].engine
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
