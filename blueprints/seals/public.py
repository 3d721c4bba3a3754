"""Public pages outside the API: the verification page a QR code opens, and the CRLs."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from cryptography.hazmat.primitives import serialization
from flask import Blueprint, Response

from app.calendar import LOCAL_TZ
from app.db import get_session, utcnow
from app.errors import DomainError
from app.seals import get_seal_context
from app.seals.registry import find_by_code, public_view
from app.seals.trust import current_crl
from blueprints.authz import public

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


def _page(title: str, body: str, status: int = 200) -> Response:
    html = (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title></head>"
        "<body style='font-family:sans-serif;max-width:40em;margin:2em auto'>"
        f"{body}</body></html>"
    )
    return Response(html, status=status, mimetype="text/html")


@blp.get("/s/<string:code>")
@public
def verify_page(code: str) -> Response:
    """The page a document's QR code opens: what the registry says about it."""
    ctx = get_seal_context()
    try:
        document = find_by_code(get_session(), ctx, code)
    except DomainError:
        return _page("核验失败", "<h1>核验失败</h1><p>核验码无效或文书不存在。</p>", 404)
    view: dict[str, Any] = public_view(document, ctx)
    status = view["status"]
    colour = "#1a7f37" if status == "valid" else "#cf222e"
    rows = [
        ("文书类型", view["type"]),
        ("文书编号", view["number"]),
        ("签发机关", view["issuer"]),
        ("印章", f"{view['seal']['name']}（{view['seal']['code']}）"),
        ("持证人", view["holder"]),
        ("签发时间", _beijing(view["issued_at"])),
        ("文件摘要 SHA-256", view["sha256"]),
    ]
    table = "".join(
        f"<tr><th align='left'>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows
    )
    body = (
        f"<h1 style='color:{colour}'>{escape(_STATUS_TEXT.get(status, status))}</h1>"
        f"<p data-status='{escape(status)}'>"
        f"该文书在登记系统中的状态：{escape(_STATUS_TEXT.get(status, status))}</p>"
        f"<table>{table}</table>"
        f"<p><a href='/api/v1/seals/verify/{escape(code)}/pdf'>下载已签名的PDF</a></p>"
    )
    return _page("电子文书核验", body)
