"""Two workers draining at once, on committed rows and separate connections."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from flask import Flask
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import utcnow
from app.identity.models import User
from app.integrations.wechat import get_wechat
from app.notify import outbox
from app.notify.models import NotificationOutbox, OutboxStatus, SubscriptionGrant
from app.notify.sender import DrainStats, Outcome, deliver_by_id, drain
from app.notify.templates import TemplateCatalog
from tests.factories.notify import (
    QUEUE_CALLED_DATA,
    emulator_grant,
    emulator_login,
    emulator_messages,
    unique_openid,
)

USERS = 3
PER_USER = 8


@dataclass
class Committed:
    factory: sessionmaker[Session]
    user_ids: list[int] = field(default_factory=list)


@pytest.fixture
def committed(app: Flask) -> Iterator[Committed]:
    """Sessions on their own connections that really commit; the test's users are removed after."""
    factory = sessionmaker(bind=app.extensions["db"].engine, expire_on_commit=False)
    state = Committed(factory)
    yield state
    user_ids = state.user_ids
    with factory() as session:
        if user_ids:
            session.execute(
                delete(NotificationOutbox).where(NotificationOutbox.user_id.in_(user_ids))
            )
            session.execute(
                delete(SubscriptionGrant).where(SubscriptionGrant.user_id.in_(user_ids))
            )
            session.execute(delete(User).where(User.id.in_(user_ids)))
            session.commit()


class SlowSender:
    """The real client, a little slower, so the two workers' drains overlap."""

    def __init__(self, real: object) -> None:
        self.real = real

    def send_subscribe_message(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.005)
        return self.real.send_subscribe_message(*args, **kwargs)  # type: ignore[attr-defined]


def _user_with_messages(
    session: Session,
    committed: Committed,
    emulator_url: str,
    prefix: str,
    *,
    now: dt.datetime,
    catalog: TemplateCatalog,
) -> tuple[User, list[int]]:
    """A user WeChat knows, subscribed for `PER_USER` messages, and that many due in the
    outbox; added to `committed` for clean-up. Returns the user and the rows' ids."""
    user = User(openid=unique_openid(prefix))
    session.add(user)
    session.flush()
    committed.user_ids.append(user.id)
    emulator_login(emulator_url, user.openid)
    emulator_grant(emulator_url, user.openid, "queue_called", count=PER_USER)
    for _ in range(PER_USER):
        outbox.record_subscription_result(
            session, user.id, {"queue_called": "accept"}, now, catalog=catalog
        )
    ids = []
    for n in range(PER_USER):
        row_id = outbox.enqueue(
            session,
            user_id=user.id,
            template_key="queue_called",
            data=dict(QUEUE_CALLED_DATA),
            dedupe_key=f"{prefix}:{user.openid}:{n}",
            now=now,
            catalog=catalog,
        )
        assert row_id is not None
        ids.append(row_id)
    return user, ids


def _two_workers(body: Callable[[int], None]) -> list[BaseException]:
    """Run `body(0)` and `body(1)` in two threads started together; what either raised."""
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            start.wait()
            body(index)
        except BaseException as error:  # surfaced to the test, not lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return failures


def test_two_drainers_never_send_the_same_row_twice(
    app: Flask, committed: Committed, emulator_url: str
):
    now = utcnow()
    catalog = app.extensions["notify_templates"]
    users: list[User] = []
    with committed.factory() as session:
        for _ in range(USERS):
            user, _ids = _user_with_messages(
                session, committed, emulator_url, "o_race", now=now, catalog=catalog
            )
            users.append(user)
        session.commit()

    sender = SlowSender(get_wechat(app))
    results: list[list[DrainStats]] = [[], []]

    def drain_until_empty(index: int) -> None:
        while True:
            stats = drain(committed.factory, sender, now_fn=utcnow, batch=4)  # type: ignore[arg-type]
            results[index].append(stats)
            if stats.claimed == 0:
                return

    assert _two_workers(drain_until_empty) == []
    sent_by = [sum(s[Outcome.SENT] for s in runs) for runs in results]
    assert sum(sent_by) == USERS * PER_USER
    assert all(s.errors == 0 for runs in results for s in runs)
    for user in users:
        messages = emulator_messages(emulator_url, user.openid)
        assert len(messages) == PER_USER
    with committed.factory() as session:
        rows = session.scalars(
            select(NotificationOutbox).where(NotificationOutbox.user_id.in_(committed.user_ids))
        ).all()
        assert {row.status for row in rows} == {OutboxStatus.SENT}
        assert {row.attempts for row in rows} == {1}


def test_the_same_row_delivered_by_two_messages_at_once_is_sent_once(
    app: Flask, committed: Committed, emulator_url: str
):
    # A "deliver row N" message can arrive twice (redelivered by the broker, or the after-commit
    # hint beside the sweep's): each claims the row and commits the claim only with the checks
    # before the send, so the second waits on the first's row lock and then finds it leased.
    now = utcnow()
    catalog = app.extensions["notify_templates"]
    with committed.factory() as session:
        user, ids = _user_with_messages(
            session, committed, emulator_url, "o_twice", now=now, catalog=catalog
        )
        session.commit()

    sender = SlowSender(get_wechat(app))
    outcomes: list[list[Outcome | None]] = [[], []]

    def deliver_each(index: int) -> None:
        for row_id in ids:
            delivery = deliver_by_id(committed.factory, sender, row_id, now_fn=utcnow)  # type: ignore[arg-type]
            outcomes[index].append(delivery.outcome)

    assert _two_workers(deliver_each) == []
    # Each row: one message sent it, the other found nothing to claim.
    for first, second in zip(*outcomes, strict=True):
        assert sorted([first, second], key=str) == sorted([Outcome.SENT, None], key=str)
    assert len(emulator_messages(emulator_url, user.openid)) == PER_USER
    with committed.factory() as session:
        rows = session.scalars(
            select(NotificationOutbox).where(NotificationOutbox.user_id == user.id)
        ).all()
        assert {row.status for row in rows} == {OutboxStatus.SENT}
        assert {row.attempts for row in rows} == {1}
