"""The signed cookie session is the console's: API requests get Flask's null session."""

from __future__ import annotations

import pytest
from flask import Flask, request, session
from flask.sessions import NullSession, SecureCookieSession


@pytest.mark.parametrize(
    ("path", "opened"),
    [
        ("/console/", True),
        ("/console", True),
        ("/console/login", True),
        ("/consoles/login", False),
        ("/api/v1/queue/tickets", False),
        ("/healthz", False),
    ],
)
def test_only_console_requests_open_the_cookie_session(app: Flask, path: str, opened: bool) -> None:
    with app.test_request_context(path):
        session = app.session_interface.open_session(app, request)
    assert isinstance(session, SecureCookieSession) is opened
    assert (session is None) is not opened


def test_an_api_view_cannot_write_a_cookie(app: Flask) -> None:
    # Pushing the request's context opens its session, as a request does.
    with app.test_request_context("/api/v1/queue/tickets"):
        assert isinstance(session._get_current_object(), NullSession)  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError):
            session["staff"] = 1
