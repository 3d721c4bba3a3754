"""Public pages outside the API: the verification page a QR code opens, and the CRLs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography.hazmat.primitives import serialization
from flask import Blueprint, Response, render_template

from app.calendar import LOCAL_TZ
from app.db import get_session, utcnow
from app.errors import DomainError
from app.seals import get_seal_context
from app.seals.registry import find_by_code, public_view
from app.seals.trust import current_crl
from blueprints.authz import public
from blueprints.console.rendering import page_headers

blp = Blueprint("seals_public", __name__)

_STATUS_TEXT = {"valid": "有效", "revoked": "已撤销", "superseded": "已被替代"}


def _beijing(moment: dt.datetime) -> str:
    """How a person in Panyu reads the moment, as the PDF prints it."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M（北京时间）")


@blp.get("/seals/crl/<string:name>.crl")
@public
def crl(name: str) -> Response:
    """The CRL the certificates name (DER)."""
    ctx = get_seal_context()
    try:
        revocation_list = current_crl(get_session(), ctx, name, utcnow())
    except DomainError:
        return Response("not found", status=404, mimetype="text/plain")
    return Response(
        revocation_list.public_bytes(serialization.Encoding.DER),
        mimetype="application/pkix-crl",
        headers={"Cache-Control": "public, max-age=600"},
    )


@blp.get("/s/<string:code>")
@public
def verify_page(code: str) -> Response:
    """The page a document's QR code opens: what the registry says about it."""
    ctx = get_seal_context()
    try:
        document = find_by_code(get_session(), ctx, code)
    except DomainError:
        return Response(
            render_template("console/verify.html", found=False), status=404, mimetype="text/html"
        )
    view: dict[str, Any] = public_view(document, ctx)
    status = view["status"]
    facts = [
        ("文书类型", view["type"]),
        ("文书编号", view["number"]),
        ("签发机关", view["issuer"]),
        ("印章", f"{view['seal']['name']}（{view['seal']['code']}）"),
        ("持证人", view["holder"]),
        ("签发时间", _beijing(view["issued_at"])),
        ("文件摘要 SHA-256", view["sha256"]),
    ]
    return Response(
        render_template(
            "console/verify.html",
            found=True,
            status=status,
            status_text=_STATUS_TEXT.get(status, status),
            facts=facts,
            pdf_url=f"/api/v1/seals/verify/{code}/pdf",
        ),
        mimetype="text/html",
    )


# The public page carries the console's page headers (no framing, scripts only from this site).
blp.after_request(page_headers)
