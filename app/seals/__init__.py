"""Electronic seals: records, services and the app's wiring of the `seals` library."""

from __future__ import annotations

from flask import Flask, current_app

from app.seals.context import SealContext


def init_app(app: Flask) -> None:
    app.extensions["seals"] = SealContext.from_config(app.config)


def get_seal_context() -> SealContext:
    """The app's seal context (created on first use)."""
    context = current_app.extensions.get("seals")
    if context is None:
        context = SealContext.from_config(current_app.config)
        current_app.extensions["seals"] = context
    if not context.has_pki() and current_app.config["ENV_NAME"] != "production":
        # Development and tests get a throwaway CA on first use; production imports its own.
        from app.seals.cli import ensure_dev_pki

        ensure_dev_pki(context)
    return context  # type: ignore[no-any-return]
