"""The 禺好办 backend core: `create_app()` and one package per domain."""

from __future__ import annotations

from typing import Any

from flask import Flask

from config import BaseConfig, load_config


def create_app(config: BaseConfig | str | None = None, **overrides: Any) -> Flask:
    """Build the app for `config` (a settings object, a name, or $APP_ENV)."""
    settings = config if isinstance(config, BaseConfig) else load_config(config)
    app = Flask(__name__, instance_relative_config=False)
    app.config.from_mapping(settings.as_flask_config())
    app.config.update(overrides)

    register_logging(app)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    return app


def register_logging(app: Flask) -> None:
    from app import observability
    from app.logs import configure_logging, init_request_logging

    configure_logging(app.config["LOG_LEVEL"])
    init_request_logging(app)
    proxies = int(app.config.get("PROXY_COUNT", 0))
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Outermost, so the request id, the logs, rate limits and /metrics' loopback check see
        # the client's address rather than the balancer's.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies
        )
    observability.init_app(app)


def register_extensions(app: Flask) -> None:
    from app import db, extensions, integrations, jobs, policies, queueing, seals, security
    from app.notify import templates

    db.init_app(app)
    security.init_app(app)
    templates.init_app(app)
    seals.init_app(app)
    policies.init_app(app)
    queueing.init_app(app)
    extensions.init_limiter(app)
    integrations.init_app(app)
    jobs.init_app(app)


def register_blueprints(app: Flask) -> None:
    from blueprints import register_blueprints as register
    from blueprints.headers import use_security_headers
    from blueprints.http import use_bounded_ids

    use_bounded_ids(app)
    use_security_headers(app)
    register(app)


def register_errorhandlers(app: Flask) -> None:
    from blueprints.errors import register_error_handlers
    from blueprints.http import enforce_json_bodies

    register_error_handlers(app)
    enforce_json_bodies(app)


def register_commands(app: Flask) -> None:
    from app.cli import register_cli

    register_cli(app)
