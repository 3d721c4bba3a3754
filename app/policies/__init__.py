"""Support policies for enterprises: criteria, matching, pushes, the feed and accounts."""

from __future__ import annotations

from flask import Flask

from app.policies.matching import CriteriaCache


def init_app(app: Flask) -> None:
    """The caches that live as long as the app."""
    app.extensions["policy_criteria"] = CriteriaCache()
