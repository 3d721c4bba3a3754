"""Factories for the notification outbox: WeChat-known users, grants, rows, emulator checks."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from typing import Any

import pytest
import requests
from sqlalchemy.orm import Session

from app.db import utcnow
from app.identity.models import User
from app.notify import outbox
from app.notify.models import NotificationOutbox

_serial = itertools.count(1)

QUEUE_CALLED_DATA = {
    "character_string1": "A012",
    "thing2": "番禺区政务服务中心",
    "thing3": "3号窗口",
    "time4": "2024-05-01 10:30",
}


def emulator_login(emulator_url: str, openid: str) -> None:
    """Make the openid known to the emulator, as the user's first wx.login does."""
    response = requests.post(f"{emulator_url}/_emulator/login", json={"openid": openid}, timeout=5)
    response.raise_for_status()


def emulator_grant(emulator_url: str, openid: str, template_id: str, count: int = 1) -> None:
    """Tap 允许 `count` times in the emulator (WeChat's own record of the grant)."""
    response = requests.post(
        f"{emulator_url}/_emulator/subscriptions",
        json={"openid": openid, "template_id": template_id, "count": count},
        timeout=5,
    )
    response.raise_for_status()


def emulator_messages(emulator_url: str, openid: str) -> list[dict[str, Any]]:
    """The subscribe messages the emulator received for `openid`."""
    response = requests.get(
        f"{emulator_url}/_emulator/messages", params={"touser": openid}, timeout=5
    )
    response.raise_for_status()
    return list(response.json()["messages"])


def emulator_fault(emulator_url: str, errcode: int, times: int) -> None:
    """Make the next `times` subscribe sends answer `errcode`."""
    response = requests.post(
        f"{emulator_url}/_emulator/faults",
        json={"endpoint": "subscribe_send", "errcode": errcode, "times": times},
        timeout=5,
    )
    response.raise_for_status()


def unique_openid(prefix: str = "o_notify") -> str:
    return f"{prefix}_{next(_serial):06d}_{utcnow():%H%M%S%f}"


@pytest.fixture
def create_wechat_user(create_user: Callable[..., User], emulator_url: str) -> Callable[..., User]:
    """A user the emulator knows (logged in once), so messages can be sent to them."""

    def create(**fields: Any) -> User:
        fields.setdefault("openid", unique_openid())
        user = create_user(**fields)
        emulator_login(emulator_url, user.openid)
        return user

    return create


@pytest.fixture
def grant_subscription(session: Session, emulator_url: str) -> Callable[..., None]:
    """Grant a template both in WeChat (emulator) and in our records, as a real 允许 tap does.

    `in_wechat=False` or `locally=False` makes the two disagree on purpose.
    """

    def grant(
        user: User,
        template_id: str = "queue_called",
        *,
        count: int = 1,
        in_wechat: bool = True,
        locally: bool = True,
    ) -> None:
        if in_wechat:
            emulator_grant(emulator_url, user.openid, template_id, count)
        if locally:
            for _ in range(count):
                outbox.record_subscription_result(
                    session, user.id, {template_id: "accept"}, utcnow()
                )
        session.flush()

    return grant


@pytest.fixture
def enqueue_notification(session: Session) -> Callable[..., NotificationOutbox]:
    """Put one notification in the outbox (due at `now`) and return its row."""

    def enqueue(
        user: User,
        template_key: str = "queue_called",
        *,
        data: dict[str, str] | None = None,
        dedupe_key: str | None = None,
        now: dt.datetime | None = None,
        source: tuple[str, int] | None = None,
    ) -> NotificationOutbox:
        row_id = outbox.enqueue(
            session,
            user_id=user.id,
            template_key=template_key,
            data=data if data is not None else dict(QUEUE_CALLED_DATA),
            page="pages/queue/ticket?id=1",
            dedupe_key=dedupe_key or f"test:{next(_serial)}:{template_key}",
            source=source,
            now=now or utcnow(),
        )
        assert row_id is not None
        return session.get_one(NotificationOutbox, row_id)

    return enqueue


@pytest.fixture
def sent_to(emulator_url: str) -> Callable[[User], list[dict[str, Any]]]:
    """The messages the emulator received for a user."""
    return lambda user: emulator_messages(emulator_url, user.openid)
