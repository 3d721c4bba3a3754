"""The outbox itself: enqueue once per event, claim without overlap, record grants."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.identity.models import User
from app.jobs import dispatch
from app.notify import outbox
from app.notify.errors import PersonalDataInMessage, UnknownTemplate, UnknownTemplateKey
from app.notify.models import NotificationOutbox, OutboxStatus, SubscriptionGrant
from app.notify.templates import Template, TemplateCatalog
from tests.factories.notify import QUEUE_CALLED_DATA

NOW = dt.datetime(2024, 5, 1, 2, 30, tzinfo=dt.UTC)


def _enqueue(session: Session, user_id: int, dedupe_key: str, **overrides):  # type: ignore[no-untyped-def]
    arguments = {
        "user_id": user_id,
        "template_key": "queue_called",
        "data": dict(QUEUE_CALLED_DATA),
        "dedupe_key": dedupe_key,
        "now": NOW,
    }
    arguments.update(overrides)
    new_id = outbox.enqueue(session, **arguments)
    return session.get(NotificationOutbox, new_id) if new_id is not None else None


def _subscribed(session: Session, user: User, template_id: str = "queue_called") -> User:
    """The user tapped 允许 for the template (a message due now is then left for the sender)."""
    outbox.record_subscription_result(session, user.id, {template_id: "accept"}, NOW)
    return user


def test_enqueue_twice_with_the_same_dedupe_key_keeps_one_row(session, create_user):
    user = _subscribed(session, create_user())

    first = _enqueue(session, user.id, "ticket:123:called", source=("ticket", 123))
    second = _enqueue(session, user.id, "ticket:123:called", source=("ticket", 123))

    assert first is not None and first.status is OutboxStatus.PENDING
    assert second is None
    rows = session.scalars(
        select(NotificationOutbox).where(NotificationOutbox.dedupe_key == "ticket:123:called")
    ).all()
    assert [row.id for row in rows] == [first.id]
    assert outbox.find_by_source(session, "ticket", 123) == [first]
    assert first.template_id == "queue_called"
    assert first.next_attempt_at == NOW


def test_enqueue_refuses_phone_numbers_and_id_numbers_in_message_fields(
    session, create_user, valid_id_number
):
    user = create_user()

    with pytest.raises(PersonalDataInMessage):
        _enqueue(session, user.id, "a", data={"thing2": "联系电话13812345678"})
    with pytest.raises(PersonalDataInMessage):
        _enqueue(session, user.id, "b", data={"character_string1": valid_id_number()})
    # A ticket number, a date and a long serial that is neither are fine.
    assert _enqueue(session, user.id, "c", data={"character_string1": "20240501000123"})


def test_enqueue_with_an_unknown_template_key_is_a_programming_error(session, create_user):
    user = create_user()

    with pytest.raises(UnknownTemplateKey):
        _enqueue(session, user.id, "x", template_key="no_such_template")


def test_enqueue_dispatches_the_new_row_only_after_commit(app: Flask, session, create_user):
    factory = app.extensions["db"].sessionmaker
    heard: list[tuple[str, list[int]]] = []
    dispatch.install(factory, lambda kind, ids: heard.append((kind, ids)))
    try:
        user = _subscribed(session, create_user())
        row = _enqueue(session, user.id, "ticket:9:called")
        session.flush()
        assert heard == []
        session.commit()
        assert heard == [("notify", [row.id])]

        _enqueue(session, user.id, "ticket:10:called")
        session.rollback()
        session.commit()
        assert heard == [("notify", [row.id])]  # the rolled-back row was never announced
    finally:
        dispatch.install(factory, app.extensions["jobs"].dispatch)


def test_a_message_due_now_without_the_users_authorisation_is_skipped_by_its_insert(
    app: Flask, session, create_user
):
    """Never sent without an authorisation: when the user holds none as the event commits,
    the INSERT records the skip and no worker is woken to find it out."""
    factory = app.extensions["db"].sessionmaker
    heard: list[tuple[str, list[int]]] = []
    dispatch.install(factory, lambda kind, ids: heard.append((kind, ids)))
    try:
        unsubscribed, subscribed = create_user(), _subscribed(session, create_user())
        used_up = create_user()
        outbox.record_subscription_result(session, used_up.id, {"queue_called": "reject"}, NOW)

        skipped = _enqueue(session, unsubscribed.id, "ticket:1:called")
        no_longer = _enqueue(session, used_up.id, "ticket:2:called")
        pending = _enqueue(session, subscribed.id, "ticket:3:called")
        # A reminder due later waits: the user may still subscribe before it is due.
        reminder = _enqueue(
            session, unsubscribed.id, "ticket:1:near", not_before=NOW + dt.timedelta(hours=1)
        )
        session.commit()

        for row in (skipped, no_longer):
            assert (row.status, row.last_error_code) == (OutboxStatus.SKIPPED, "NO_SUBSCRIPTION")
        assert (pending.status, pending.last_error_code) == (OutboxStatus.PENDING, None)
        assert reminder.status is OutboxStatus.PENDING
        assert heard == [("notify", [pending.id, reminder.id])]
        # The subscriber's authorisation was only read: the sender takes it when it sends.
        assert _grant(session, subscribed.id, "queue_called").one_time_remaining == 1
        assert outbox.claim_due(session, now=NOW, limit=10, lease_seconds=60) == [pending]
    finally:
        dispatch.install(factory, app.extensions["jobs"].dispatch)


def test_many_rows_are_written_as_given_in_one_insert_and_taken_keys_skipped(session, create_user):
    # PostgreSQL reads the rows back from one jsonb parameter into each column's type: the
    # times, the JSON data (Chinese text), the status and the NULLs must come back unchanged.
    user = create_user()
    taken = _enqueue(session, user.id, "policy:7:ent:1", source=("policy", 7))
    later = NOW + dt.timedelta(hours=3)
    data = {"thing1": "稳岗补贴", "time2": "2024年05月01日"}
    rows = []
    for index, key in enumerate(["policy:7:ent:1", "policy:7:ent:2", "policy:7:ent:3"]):
        row = outbox.row_values(
            {
                "user_id": user.id,
                "template_key": "queue_called",
                "data": data,
                "page": f"pages/policy/detail?id={index}",
                "dedupe_key": key,
                "source": ("policy", 7),
            },
            now=NOW,
            catalog=TemplateCatalog.defaults(),
        )
        row.update(status=OutboxStatus.SENDING, attempts=1, claim_token=1, locked_until=later)
        rows.append(row)
    rows[2]["page"] = None

    inserted = outbox.insert_many(session, rows)

    assert taken is not None and set(inserted) == {"policy:7:ent:2", "policy:7:ent:3"}
    session.expire_all()
    for row in rows[1:]:
        written = session.get_one(NotificationOutbox, inserted[row["dedupe_key"]])
        assert written.data == data and written.page == row["page"]
        assert (written.status, written.attempts, written.claim_token) == (
            OutboxStatus.SENDING,
            1,
            1,
        )
        assert (written.next_attempt_at, written.created_at, written.locked_until) == (
            NOW,
            NOW,
            later,
        )
        assert (written.source_type, written.source_id, written.user_id) == ("policy", 7, user.id)
    assert outbox.insert_many(session, []) == {}


def test_rows_of_one_insert_must_name_the_same_columns(session, create_user):
    user = create_user()
    item = {
        "user_id": user.id,
        "template_key": "queue_called",
        "data": dict(QUEUE_CALLED_DATA),
        "dedupe_key": "a",
        "source": None,
    }
    first = outbox.row_values(item, now=NOW, catalog=TemplateCatalog.defaults())
    second = {
        **outbox.row_values(
            {**item, "dedupe_key": "b"}, now=NOW, catalog=TemplateCatalog.defaults()
        ),
        "locked_until": NOW,
    }

    with pytest.raises(ValueError):
        outbox.insert_many(session, [first, second])


def test_claimed_rows_are_not_claimed_again_until_the_lease_runs_out(session, create_user):
    user = _subscribed(session, create_user())
    rows = [_enqueue(session, user.id, f"k{i}") for i in range(3)]

    first = outbox.claim_due(session, now=NOW, limit=2, lease_seconds=60)
    second = outbox.claim_due(session, now=NOW, limit=10, lease_seconds=60)
    during_lease = outbox.claim_due(
        session, now=NOW + dt.timedelta(seconds=59), limit=10, lease_seconds=60
    )
    after_lease = outbox.claim_due(
        session, now=NOW + dt.timedelta(seconds=61), limit=10, lease_seconds=60
    )

    assert [row.id for row in first] == [rows[0].id, rows[1].id]
    assert [row.id for row in second] == [rows[2].id]
    assert during_lease == []
    assert sorted(row.id for row in after_lease) == sorted(row.id for row in rows)
    assert all(row.status is OutboxStatus.SENDING and row.attempts == 2 for row in after_lease)


def test_rows_not_yet_due_and_finished_rows_are_not_claimed(session, create_user):
    user = _subscribed(session, create_user())
    later = _enqueue(session, user.id, "later", now=NOW + dt.timedelta(minutes=5))
    done = _enqueue(session, user.id, "done")
    done.mark_sent(now=NOW)
    session.flush()

    assert outbox.claim_due(session, now=NOW, limit=10, lease_seconds=60) == []
    assert outbox.claim_one(session, done.id, now=NOW, lease_seconds=60) is None
    claimed = outbox.claim_one(
        session, later.id, now=NOW + dt.timedelta(minutes=5), lease_seconds=60
    )
    assert claimed is not None and claimed.id == later.id
    assert (
        outbox.claim_one(session, later.id, now=NOW + dt.timedelta(minutes=5), lease_seconds=60)
        is None
    )


def _grant(session: Session, user_id: int, template_id: str) -> SubscriptionGrant:
    return session.scalars(
        select(SubscriptionGrant)
        .where(SubscriptionGrant.user_id == user_id, SubscriptionGrant.template_id == template_id)
        .execution_options(populate_existing=True)
    ).one()


def test_each_accept_adds_one_message_and_ban_takes_them_all_away(session, create_user):
    user = create_user()

    outbox.record_subscription_result(session, user.id, {"queue_called": "accept"}, NOW)
    outbox.record_subscription_result(
        session, user.id, {"queue_called": "accept", "queue_near": "reject"}, NOW
    )
    assert _grant(session, user.id, "queue_called").one_time_remaining == 2
    assert _grant(session, user.id, "queue_near").one_time_remaining == 0

    # Rejecting later does not take back what was accepted before; WeChat keeps those too.
    outbox.record_subscription_result(session, user.id, {"queue_called": "reject"}, NOW)
    outbox.record_subscription_result(session, user.id, {"queue_called": "filter"}, NOW)
    assert _grant(session, user.id, "queue_called").one_time_remaining == 2

    outbox.record_subscription_result(session, user.id, {"queue_called": "ban"}, NOW)
    grant = _grant(session, user.id, "queue_called")
    assert grant.one_time_remaining == 0 and not grant.usable
    assert grant.last_result == "ban"


def test_accepting_a_long_term_template_needs_no_count(session, create_user):
    catalog = TemplateCatalog([Template(key="hall_notice", id="tmpl-long", long_term=True)])
    user = create_user()

    outbox.record_subscription_result(
        session, user.id, {"tmpl-long": "accept"}, NOW, catalog=catalog
    )
    assert outbox.reserve_grant(session, user.id, "tmpl-long") is outbox.GrantUse.LONG_TERM
    assert outbox.reserve_grant(session, user.id, "tmpl-long") is outbox.GrantUse.LONG_TERM

    outbox.record_subscription_result(
        session, user.id, {"tmpl-long": "reject"}, NOW, catalog=catalog
    )
    assert outbox.reserve_grant(session, user.id, "tmpl-long") is None


def test_a_one_time_grant_is_spent_exactly_once(session, create_user):
    user = create_user()
    outbox.record_subscription_result(session, user.id, {"queue_called": "accept"}, NOW)

    assert outbox.reserve_grant(session, user.id, "queue_called") is outbox.GrantUse.ONE_TIME
    assert outbox.reserve_grant(session, user.id, "queue_called") is None
    outbox.return_grant(session, user.id, "queue_called")
    assert outbox.reserve_grant(session, user.id, "queue_called") is outbox.GrantUse.ONE_TIME


def test_many_grants_are_reserved_together_as_one_by_one(session, create_user):
    """`reserve_grants` (one statement on PostgreSQL, two elsewhere) answers each wanted pair
    as `reserve_grant` would in turn: a long-term subscription is never spent, a one-time grant
    once, a pair without any is refused, and a pair wanted twice takes its second grant too."""
    catalog = TemplateCatalog(
        [
            Template(key="hall_notice", id="tmpl-long", long_term=True),
            Template(key="queue_called", id="queue_called"),
        ]
    )
    subscribed, counted, once, nothing = (create_user() for _ in range(4))
    outbox.record_subscription_result(
        session, subscribed.id, {"tmpl-long": "accept"}, NOW, catalog=catalog
    )
    for _ in range(2):
        outbox.record_subscription_result(
            session, counted.id, {"queue_called": "accept"}, NOW, catalog=catalog
        )
    outbox.record_subscription_result(
        session, once.id, {"queue_called": "accept"}, NOW, catalog=catalog
    )
    wanted = [
        (subscribed.id, "tmpl-long"),
        (counted.id, "queue_called"),
        (once.id, "queue_called"),
        (nothing.id, "queue_called"),
        (counted.id, "queue_called"),
        (subscribed.id, "tmpl-long"),
        (once.id, "queue_called"),
    ]

    uses = outbox.reserve_grants(session, wanted)

    long_term, one_time = outbox.GrantUse.LONG_TERM, outbox.GrantUse.ONE_TIME
    assert uses == [long_term, one_time, one_time, None, one_time, long_term, None]
    assert _grant(session, counted.id, "queue_called").one_time_remaining == 0
    assert _grant(session, once.id, "queue_called").one_time_remaining == 0
    assert _grant(session, subscribed.id, "tmpl-long").long_term


def test_a_report_for_an_unknown_template_is_refused_whole(session, create_user):
    user = create_user()

    with pytest.raises(UnknownTemplate):
        outbox.record_subscription_result(
            session, user.id, {"queue_called": "accept", "not-ours": "accept"}, NOW
        )
    assert outbox.grants_for_user(session, user.id) == []


def test_template_setting_maps_keys_to_the_real_template_ids():
    catalog = TemplateCatalog.from_setting(
        '{"queue_called": "AbC-real-id", "policy_push": {"id": "Pp-1", "long_term": true}}'
    )

    assert catalog.by_key("queue_called").id == "AbC-real-id"
    assert catalog.by_key("queue_called").title == "排队叫号提醒"
    assert catalog.by_id("Pp-1") == Template("policy_push", "Pp-1", "政策推送提醒", True)
    assert TemplateCatalog.from_setting("").by_key("queue_near").id == "queue_near"
    with pytest.raises(ValueError):
        TemplateCatalog.from_setting('{"queue_called": ""}')


def test_newest_notifications_come_first_and_only_the_users_own(session, create_user):
    user, other = create_user(), create_user()
    rows = [_enqueue(session, user.id, f"mine{i}") for i in range(3)]
    _enqueue(session, other.id, "theirs")

    page, total = outbox.list_for_user(session, user.id, offset=0, limit=2)

    assert total == 3
    assert [row.id for row in page] == [rows[2].id, rows[1].id]
