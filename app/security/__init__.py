"""Protection of personal data: field encryption, keyed hashes, masking."""

from __future__ import annotations

from flask import Flask, current_app

from app.security.crypto import FieldCipher


def init_app(app: Flask) -> None:
    from app.identity.access_tokens import TokenSettings

    app.extensions["cipher"] = FieldCipher.from_config(
        app.config["DATA_KEYS"], app.config["DATA_INDEX_KEY"]
    )
    # A malformed JWT_SIGNING_KEYS stops the start, rather than failing every request.
    TokenSettings.from_config(app.config)


def get_cipher() -> FieldCipher:
    """The app's personal-data cipher."""
    return current_app.extensions["cipher"]
