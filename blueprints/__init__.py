"""The HTTP layer: one flask-smorest Blueprint per audience/domain, registered here."""

from __future__ import annotations

from flask import Flask

from app.extensions import api

API_PREFIX = "/api/v1"


def register_blueprints(app: Flask) -> None:
    """Register every blueprint; API ones under /api/v1."""
    from blueprints.docs.routes import blp as docs_assets
    from blueprints.health.routes import blp as health

    app.register_blueprint(health)
    app.register_blueprint(docs_assets)

    from blueprints.enterprises.routes import blp as enterprises
    from blueprints.identity.routes import blp as identity
    from blueprints.notify.routes import blp as notify
    from blueprints.staff.routes import blp as staff

    for blueprint in (identity, staff, enterprises, notify):
        api.register_blueprint(blueprint, url_prefix=API_PREFIX + (blueprint.url_prefix or ""))
