"""The console's signed cookie session, and no cookie session anywhere else.

The API is stateless (bearer tokens); only the console's pages keep a signed cookie (the
staff member's login, a screen's display token). Flask opens the cookie session on every
request, building a signing serializer each time (~1.5 % of a take's CPU); outside the console
the request gets Flask's null session instead, which reads as empty and refuses writes.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class ConsoleCookieSessions(SecureCookieSessionInterface):
    def __init__(self, console_prefix: str) -> None:
        self.console_prefix = console_prefix.rstrip("/") + "/"

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        path = request.path if request.path.endswith("/") else request.path + "/"
        if not path.startswith(self.console_prefix):
            return None  # Flask makes the null session
        return super().open_session(app, request)
