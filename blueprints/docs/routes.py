"""Swagger UI's scripts served from the installed swagger-ui-bundle package.

flask-smorest's docs page would load them from a CDN; government networks often have no route
to one, and the page would be blank.
"""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from blueprints.authz import public

ASSETS_URL = "/api/docs-assets/"

blp = Blueprint("docs_assets", __name__)


@blp.get(ASSETS_URL + "<path:filename>")
@public
def swagger_ui_asset(filename: str) -> Response:
    """A file of Swagger UI (scripts, styles, icons)."""
    return send_from_directory(swagger_ui_path, filename, max_age=86400)
