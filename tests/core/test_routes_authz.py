"""Every registered route declares who may call it; a forgotten rule fails here."""

from __future__ import annotations

from flask import Flask

from blueprints.authz import AUTHZ_ATTRIBUTE

# Served by Flask and flask-smorest themselves; they expose no data.
FRAMEWORK_ENDPOINTS = {
    "static",
    "console.static",
    "api-docs.openapi_json",
    "api-docs.openapi_swagger_ui",
}


def _undeclared(app: Flask) -> list[str]:
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in FRAMEWORK_ENDPOINTS:
            continue
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            handler = getattr(view_class, method.lower(), None) if view_class else view
            if handler is None or not getattr(handler, AUTHZ_ATTRIBUTE, None):
                missing.append(f"{method} {rule.rule} ({rule.endpoint})")
    return missing


def test_every_route_declares_an_authorisation_rule(app: Flask) -> None:
    assert _undeclared(app) == []


def test_the_walk_catches_a_route_without_a_rule() -> None:
    probe = Flask("probe")

    @probe.get("/forgotten")
    def forgotten() -> str:
        return "oops"

    assert _undeclared(probe) == ["GET /forgotten (forgotten)"]
