"""`sender.enqueue_claimed`: new notifications inserted already claimed by their sender.

It must leave each row as `enqueue_many` + `claim_ids` + `prepare_many` would: SENDING under
the caller's lease with the authorisation taken, or SKIPPED for the same reasons; and never
take an authorisation for a row it did not insert.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.notify import outbox
from app.notify.models import NotificationOutbox, OutboxStatus
from app.notify.sender import NO_SUBSCRIPTION, USER_UNAVAILABLE, enqueue_claimed

LEASE = 600.0
DATA = {"character_string1": "A012", "thing2": "番禺区政务服务中心"}


def _item(user_id: int, key: str) -> dict[str, object]:
    return {
        "user_id": user_id,
        "template_key": "queue_called",
        "data": DATA,
        "page": "pages/queue/ticket?id=1",
        "dedupe_key": key,
        "source": ("test", 1),
    }


def _remaining(session: Session, user_id: int) -> int:
    grants = {g.template_id: g for g in outbox.grants_for_user(session, user_id)}
    return grants["queue_called"].one_time_remaining if "queue_called" in grants else 0


def _row(session: Session, key: str) -> NotificationOutbox:
    row = session.scalars(
        select(NotificationOutbox)
        .where(NotificationOutbox.dedupe_key == key)
        .execution_options(populate_existing=True)
    ).one()
    return row


def test_rows_are_claimed_checked_and_authorised_in_one_go(
    session, create_wechat_user, grant_subscription
):
    granted, disabled, ungranted = (
        create_wechat_user(),
        create_wechat_user(disabled=True),
        create_wechat_user(),
    )
    grant_subscription(granted, "queue_called")
    grant_subscription(disabled, "queue_called")
    now = utcnow()

    claimed = enqueue_claimed(
        session,
        [_item(granted.id, "c-1"), _item(disabled.id, "c-2"), _item(ungranted.id, "c-3")],
        now=now,
        lease_seconds=LEASE,
    )

    assert claimed["c-1"].openid == granted.openid and claimed["c-1"].code is None
    assert claimed["c-1"].claim_token == 1 and claimed["c-1"].data == DATA
    assert (claimed["c-2"].openid, claimed["c-2"].code) == (None, USER_UNAVAILABLE)
    assert (claimed["c-3"].openid, claimed["c-3"].code) == (None, NO_SUBSCRIPTION)
    ready = _row(session, "c-1")
    assert ready.status is OutboxStatus.SENDING and ready.grant_reserved
    assert ready.locked_until == now + dt.timedelta(seconds=LEASE)
    assert (ready.attempts, ready.claim_token, ready.last_attempt_at) == (1, 1, now)
    assert _remaining(session, granted.id) == 0
    for key, code in (("c-2", USER_UNAVAILABLE), ("c-3", NO_SUBSCRIPTION)):
        row = _row(session, key)
        assert row.status is OutboxStatus.SKIPPED and row.last_error_code == code
        assert row.locked_until is None and not row.grant_reserved
    # The disabled user's authorisation was never taken.
    assert _remaining(session, disabled.id) == 1
    # Nobody else may claim the held row, even long after.
    later = now + dt.timedelta(seconds=LEASE - 1)
    assert outbox.claim_due(session, now=later, limit=10, lease_seconds=60) == []


def test_a_taken_dedupe_key_is_left_out_and_its_authorisation_given_back(
    session, create_wechat_user, grant_subscription
):
    user = create_wechat_user()
    grant_subscription(user, "queue_called")
    grant_subscription(user, "queue_called")
    outbox.enqueue_many(session, [_item(user.id, "taken")], now=utcnow())

    claimed = enqueue_claimed(
        session, [_item(user.id, "taken"), _item(user.id, "new")], now=utcnow(), lease_seconds=LEASE
    )

    assert set(claimed) == {"new"}
    assert _row(session, "taken").status is OutboxStatus.PENDING
    assert _remaining(session, user.id) == 1  # one for "new", the other given back
