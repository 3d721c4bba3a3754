"""Helpers shared by the staff tests."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.audit.models import AuditEntry

LOGIN_URL = "/api/v1/staff/auth/login"


def login(client: FlaskClient, username: str, password: str) -> TestResponse:
    return client.post(LOGIN_URL, json={"username": username, "password": password})


def end_of_request(session: Session) -> None:
    """Do what the app's teardown does after a request: drop whatever it did not commit.

    Test requests share the test's session (one app context), so without this a failed
    request's flushed writes would still be visible to the test. Commit the test's own setup
    before the request, or this drops it too.
    """
    session.rollback()


def assert_no_password_material(payload: Any) -> None:
    """No key naming a password, and no argon2 hash, anywhere in a JSON body."""
    text = json.dumps(payload, ensure_ascii=False)
    assert "$argon2" not in text

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                assert "password" not in key or key == "password_changed_at", key
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(payload)


def audit_actions(session: Session, subject_id: int | None = None) -> list[str]:
    query = select(AuditEntry.action).order_by(AuditEntry.id)
    if subject_id is not None:
        query = query.where(AuditEntry.subject_id == str(subject_id))
    return list(session.scalars(query))
