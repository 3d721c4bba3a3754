"""Security headers on every response, API and pages alike, set in this one place.

Each header is a default: a view or blueprint that needs something else sets its own first
(the console's pages their page CSP in `console.rendering.page_headers`, a reviewer's framed
material `SAMEORIGIN`, the CRLs and Swagger UI's files their public caching), and this leaves
it. Only the API's default CSP, the docs page's CSP and HSTS are decided here alone.
"""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Flask, Response, current_app, request

# JSON needs no sources at all; nothing may frame it, nothing may submit to or from it.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

# Swagger UI (flask-smorest's page, its files served by blueprints/docs): its own scripts and
# styles from this site, the page's one inline start-up script by hash, the OpenAPI document
# fetched from here. Swagger UI styles elements inline and draws icons as data: images.
DOCS_ENDPOINT = "api-docs.openapi_swagger_ui"
_DOCS_CSP = (
    "default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

# Only the window terminal's page uses a browser feature of these (the camera, to scan a
# citizen's code); nothing here uses the others.
PERMISSIONS_POLICY = "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"

_DEFAULTS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": PERMISSIONS_POLICY,
}


def docs_csp(html: str) -> str:
    """The docs page's CSP, allowing exactly the inline scripts this rendering of it holds."""
    digests = (hashlib.sha256(body.encode()).digest() for body in _INLINE_SCRIPT.findall(html))
    hashes = " ".join(f"'sha256-{base64.b64encode(digest).decode()}'" for digest in digests)
    return _DOCS_CSP.format(hashes=hashes)


def _cache_control(response: Response) -> None:
    # A response to a signed-in caller is about that caller: no cache keeps it (a browser's
    # private cache may keep what the view itself marked private). Anything else that did
    # not choose is not stored either: responses name people unless a view says otherwise.
    current = response.headers.get("Cache-Control", "")
    signed_in = "Authorization" in request.headers
    if not current or (signed_in and not {"private", "no-store"} & _directives(current)):
        response.headers["Cache-Control"] = "no-store"


def _directives(value: str) -> set[str]:
    return {part.split("=")[0].strip().lower() for part in value.split(",") if part.strip()}


def security_headers(response: Response) -> Response:
    """Add the security headers a response does not set itself (an `after_request` hook)."""
    for name, value in _DEFAULTS.items():
        response.headers.setdefault(name, value)
    if "Content-Security-Policy" not in response.headers:
        if request.endpoint == DOCS_ENDPOINT and response.mimetype == "text/html":
            response.headers["Content-Security-Policy"] = docs_csp(response.get_data(as_text=True))
        else:
            response.headers["Content-Security-Policy"] = API_CSP
    _cache_control(response)
    max_age = int(current_app.config["HSTS_MAX_AGE_SECONDS"])
    if max_age > 0:
        response.headers["Strict-Transport-Security"] = f"max-age={max_age}; includeSubDomains"
    return response


def use_security_headers(app: Flask) -> None:
    """Send the security headers on every response of `app`, errors included."""
    app.after_request(security_headers)
