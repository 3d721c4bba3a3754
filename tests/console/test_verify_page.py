"""The public verification page a document's QR opens, in the console's style: what the
registry says, on a phone-sized screen and a desktop."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select

from app.db import get_session, utcnow
from app.organisation.models import Department
from app.seals import get_seal_context
from app.seals.issuing import Holder, issue_document
from app.seals.lifecycle import SealActor
from app.seals.models import Seal
from tests.console.conftest import LiveConsole, look_at
from tests.factories.seals import WEATHER_DATA


def _issue_weather_certificate(live: LiveConsole) -> str:
    """A 气象证明 sealed with the demo weather bureau's seal; its verification code.

    Signed in another thread: pyHanko runs its own event loop, and Playwright's sync API holds
    this thread's."""
    with ThreadPoolExecutor(1) as worker:
        return worker.submit(_issue_in_app, live).result()


def _issue_in_app(live: LiveConsole) -> str:
    with live.app.app_context():
        session = get_session()
        seal = session.scalars(
            select(Seal)
            .join(Department, Department.id == Seal.department_id)
            .where(Department.code == "PY-QXJ")
        ).first()
        assert seal is not None
        ctx = get_seal_context()
        document = issue_document(
            session,
            ctx,
            seal=seal,
            template="meteorological_certificate",
            holder=Holder(name="广州市番禺区某某建筑有限公司", id_number="91440113MA5XXXXX0G"),
            data=WEATHER_DATA,
            actor=SealActor("system"),
            now=utcnow(),
            matter="meteorological_certificate",
        )
        session.commit()
        return ctx.codes.code_for(document.public_id)


def test_the_verification_page_shows_a_valid_document(
    live_console: LiveConsole, new_page: Any
) -> None:
    code = _issue_weather_certificate(live_console)
    phone = new_page(width=390, height=844)
    phone.goto(live_console.url(f"/s/{code}"))
    assert phone.get_by_role("heading", name="有效").is_visible()
    assert phone.locator("[data-status]").get_attribute("data-status") == "valid"
    assert "广州市番禺区某某建筑有限公司" in phone.locator(".facts").inner_text()
    look_at(phone, "verify-phone")
    desktop = new_page()
    desktop.goto(live_console.url(f"/s/{code}"))
    look_at(desktop, "verify-desktop")
    pdf = desktop.request.get(
        live_console.url(desktop.get_by_role("link", name="下载已签名的 PDF").get_attribute("href"))
    )
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")


def test_an_unknown_code_says_verification_failed(live_console: LiveConsole, new_page: Any) -> None:
    page = new_page(width=390, height=844)
    response = page.goto(live_console.url("/s/AAAAAAAAAA-AAAAAAAAA"))
    assert response is not None and response.status == 404
    assert page.get_by_role("heading", name="核验失败").is_visible()
    look_at(page, "verify-unknown")
