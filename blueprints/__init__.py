"""The HTTP layer: one flask-smorest Blueprint per audience/domain, registered here."""

from __future__ import annotations

from flask import Flask

from blueprints.openapi import api

API_PREFIX = "/api/v1"


def register_blueprints(app: Flask) -> None:
    """Register every blueprint; API ones under /api/v1, documented in /api/openapi.json."""
    from blueprints.authz import authorise_request
    from blueprints.transactions import open_request_session

    api.init_app(app)
    # The session a view asks for, before the authorisation's family check uses one.
    app.before_request(open_request_session)
    # Before every other check of the request (content type, body): 401/403 come first.
    app.before_request(authorise_request)
    from blueprints.docs.routes import blp as docs_assets
    from blueprints.health.routes import blp as health

    app.register_blueprint(health)
    from blueprints.seals.public import blp as seals_public

    app.register_blueprint(seals_public)
    app.register_blueprint(docs_assets)
    from blueprints.console import blp as console
    from blueprints.console.cookies import ConsoleCookieSessions

    app.register_blueprint(console)
    app.session_interface = ConsoleCookieSessions(console.url_prefix or "/")

    from blueprints.applications.inspections import blp as inspections
    from blueprints.applications.review import blp as review
    from blueprints.applications.routes import blp as applications
    from blueprints.appointments.routes import blp as appointments
    from blueprints.enterprises.routes import blp as enterprises
    from blueprints.halls.routes import blp as halls
    from blueprints.identity.routes import blp as identity
    from blueprints.licences.routes import blp as licences
    from blueprints.matters.routes import blp as matters
    from blueprints.notify.routes import blp as notify
    from blueprints.policies.routes import blp as policies
    from blueprints.queue_stats.routes import blp as queue_stats
    from blueprints.queueing.citizen import blp as queueing
    from blueprints.queueing.screen import blp as queue_screen
    from blueprints.queueing.terminal import blp as queue_terminal
    from blueprints.ratings.routes import blp as ratings
    from blueprints.seals.routes import blp as seals
    from blueprints.staff.routes import blp as staff

    api_blueprints = (
        identity,
        staff,
        enterprises,
        notify,
        halls,
        queueing,
        queue_terminal,
        queue_screen,
        appointments,
        ratings,
        queue_stats,
        policies,
        seals,
        matters,
        applications,
        review,
        inspections,
        licences,
    )
    from app.policies import criteria_schema

    # The criteria language's recursive JSON Schema, referenced by the policy bodies.
    for name, component in criteria_schema.components().items():
        api.spec.components.schema(name, component)
    for blueprint in api_blueprints:
        api.register_blueprint(blueprint, url_prefix=API_PREFIX + (blueprint.url_prefix or ""))
