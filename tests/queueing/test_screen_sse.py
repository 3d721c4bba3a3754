"""The hall screen's event stream, received by a real HTTP client while a clerk calls a number."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask

from app import create_app
from app.audit.service import Actor
from app.db import utcnow
from app.identity.models import StaffAccount, StaffRole, StaffRoleGrant, User
from app.identity.principals import principal_for
from app.identity.sessions import start_session
from app.organisation.models import Hall, HallKind
from app.queueing.demo import setup_queue_hall
from app.queueing.models import TicketSource
from app.queueing.settings import from_config
from app.queueing.taking import issue_ticket
from tests.factories.identity import app_token_settings
from tests.support import database as test_database
from tests.support.http import served


@pytest.fixture
def live_app(tmp_path: Path, emulator_url: str) -> Iterator[tuple[Flask, str]]:
    """Its own app on a SQLite file, served over real HTTP by werkzeug in a thread."""
    app = create_app(
        "testing",
        DATABASE_URL=f"sqlite:///{tmp_path / 'sse.db'}",
        WECHAT_API_BASE=emulator_url,
        RATELIMIT_ENABLED=False,
        JOB_RUNNER="manual",
    )
    test_database.build_schema(app)
    with served(app) as base_url:
        yield app, base_url


def test_sse_stream_receives_the_call_with_its_announcement(live_app: tuple[Flask, str]) -> None:
    app, base = live_app
    with app.app_context():
        session = app.extensions["db"].sessionmaker()
        hall = Hall(code="SSE01", name="SSE测试大厅", kind=HallKind.TOWN)
        session.add(hall)
        session.flush()
        qh = setup_queue_hall(session, hall, categories=[("综合业务", "A")], windows=[(3, "A")])
        clerk = StaffAccount(username="sse.clerk", display_name="窗口", password_hash="x")
        clerk.grants = [StaffRoleGrant(role=StaffRole.WINDOW_CLERK, hall_id=hall.id)]
        citizen = User(openid="o_sse_citizen")
        session.add_all([clerk, citizen])
        session.flush()
        for _ in range(12):  # A001..A012; the twelfth is the one called
            session.add(User(openid=f"o_sse_{_}"))
        session.flush()
        settings = from_config(app.config)
        for user in session.query(User).order_by(User.id).limit(12).all():
            issue_ticket(
                session,
                category=qh.categories["A"],
                user_id=user.id,
                source=TicketSource.HALL_CODE,
                actor=Actor("user", user.id),
                now=utcnow(),
                settings=settings,
            )
        pair = start_session(
            session,
            principal_for(session, "staff", clerk.id),
            settings=app_token_settings(app),
            refresh_ttl_seconds=600,
            now=utcnow(),
        )
        window_id, hall_id = qh.windows[3].id, hall.id
        session.commit()
        session.close()

    headers = {"Authorization": f"Bearer {pair.access_token}"}
    stream = requests.get(f"{base}/api/v1/screen/halls/{hall_id}/events", stream=True, timeout=10)
    assert stream.status_code == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    lines = stream.iter_lines(decode_unicode=True)
    events: list[tuple[str, dict]] = []

    def read(count: int) -> None:
        event = None
        for line in lines:
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: ") and event:
                events.append((event, json.loads(line[len("data: ") :])))
                if len(events) >= count:
                    return

    read(1)  # hello: the listener is registered
    assert events[0][0] == "hello"
    # Another client (the clerk's terminal) calls the next numbers.
    displays = []
    for _ in range(12):
        called = requests.post(
            f"{base}/api/v1/terminal/windows/{window_id}/call-next",
            headers=headers,
            json={},
            timeout=10,
        )
        assert called.status_code == 200, called.text
        displays.append(called.json()["display"])
        ticket_id = called.json()["id"]
        for action in ("serve", "finish"):
            done = requests.post(
                f"{base}/api/v1/terminal/windows/{window_id}/tickets/{ticket_id}/{action}",
                headers=headers,
                json={},
                timeout=10,
            )
            assert done.status_code == 200, done.text
    read(13)
    stream.close()
    calls = [data for kind, data in events if kind == "call"]
    assert [c["display"] for c in calls] == displays
    assert calls[-1]["text"] == "请A012号到3号窗口办理"
    board = requests.get(f"{base}/api/v1/screen/halls/{hall_id}/board", timeout=10).json()
    assert board["windows"][0]["number"] == 3
