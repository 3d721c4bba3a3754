"""Writing to the outbox, claiming due rows, and the users' subscription grants.

Every function takes the session and an explicit `now`, and flushes without committing:
`enqueue` joins the caller's transaction, so a notification exists exactly when the event
that caused it was committed. After that commit the job runner is told there is work (see
`app.jobs.dispatch`); until then nothing can see the row.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from stdnum.cn import ric

from app.db import affected_rows, built_once, insert_on_conflict
from app.jobs.dispatch import after_commit_dispatch
from app.notify.errors import PersonalDataInMessage, UnknownTemplate
from app.notify.models import (
    NotificationOutbox,
    OutboxStatus,
    SubscriptionGrant,
    SubscriptionResult,
)
from app.notify.sql import RowSource, pairs_in
from app.notify.templates import Template, TemplateCatalog, get_catalog

NOTIFY_JOB = "notify"
# Why a row was skipped: the user gave no authorisation for its template.
NO_SUBSCRIPTION = "NO_SUBSCRIPTION"

# A mainland mobile number, or 17 digits and a check character (verified below), standing alone.
_MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
_ID_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")


def _looks_like_id_number(candidate: str) -> bool:
    # Check digit and birth date only: stdnum's full check also wants a known area code and
    # misses newer districts, and here a false "no" would let an ID number through.
    number = candidate.upper()
    try:
        dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    # calc_check_digit reads the first 17 of all 18 characters.
    return bool(ric.calc_check_digit(number) == number[17])


def check_no_personal_data(data: Mapping[str, Any]) -> None:
    """Refuse message fields that hold a phone or an ID number (they are never sent to WeChat)."""
    for key, value in data.items():
        text = str(value)
        if _MOBILE.search(text):
            raise PersonalDataInMessage(f"field {key!r} looks like a phone number")
        if any(_looks_like_id_number(match) for match in _ID_CANDIDATE.findall(text)):
            raise PersonalDataInMessage(f"field {key!r} looks like an ID number")


def _insert_ignoring_conflict(
    session: Session,
    model: type[Any],
    values: Mapping[str, Any],
    conflict: list[str],
) -> None:
    """INSERT the row unless one with the same `conflict` columns exists.

    One statement (ON CONFLICT DO NOTHING, on PostgreSQL and SQLite alike), so two callers
    racing on the same key get one row and neither sees an error or aborts its transaction.
    """
    insert = insert_on_conflict(session.get_bind().dialect.name)
    session.execute(insert(model).values(**values).on_conflict_do_nothing(index_elements=conflict))


def enqueue(
    session: Session,
    *,
    user_id: int,
    template_key: str,
    data: Mapping[str, str],
    page: str | None = None,
    dedupe_key: str,
    source: tuple[str, int] | None = None,
    now: dt.datetime,
    not_before: dt.datetime | None = None,
    catalog: TemplateCatalog | None = None,
) -> int | None:
    """Add a notification to the outbox once per `dedupe_key`: the new row's id, or None if
    it was already there. (The id, not the row: the callers only send it, and reading the
    row back would be one more statement in every request that notifies.)

    The row becomes due at `not_before` (a reminder) or else at `now`. After the caller
    commits, the job runner is woken; a row not yet due waits for the drain's next pass.

    A message due now for a user who holds no authorisation for its template is settled by
    the same INSERT, skipped (`NO_SUBSCRIPTION`) as the sender would skip it, and wakes no
    worker. WeChat asks for the authorisation only from a tap of the user's
    (`wx.requestSubscribeMessage`), on the page that leads to the event (submit, book, take a
    number), so one not held now would not be held at the send either, a moment later; the
    job's message, claim, checks and update cost more than the 秒批's own reads (in
    bench/instant_approval.py an approval took 47 ms of CPU across server, worker, database
    and Redis with them, 34 without). The authorisation is only read here: the sender takes
    it when it sends. A reminder due later is left pending: the user may subscribe before it
    is due.
    """
    item = {
        "user_id": user_id,
        "template_key": template_key,
        "data": data,
        "page": page,
        "dedupe_key": dedupe_key,
        "source": source,
    }
    values = row_values(item, now=now, catalog=catalog or get_catalog())
    due = max(now, not_before) if not_before else now
    values["next_attempt_at"] = due
    due_now = due <= now
    if due_now:
        # Written by the statement, from the authorisation it reads (`_enqueue_statement`).
        del values["status"]
    statement = _enqueue_statement(session.get_bind().dialect.name, tuple(values), due_now)
    inserted: Any = session.execute(
        statement, {_ENQUEUE_PREFIX + name: value for name, value in values.items()}
    ).one_or_none()
    if inserted is None:
        return None
    new_id, status = inserted
    if status == OutboxStatus.PENDING:
        after_commit_dispatch(session, NOTIFY_JOB, new_id)
    return int(new_id)


# `enqueue`'s bound values are named apart from the columns: SQLAlchemy keeps a column's own
# name for the bind it would make for that column itself.
_ENQUEUE_PREFIX = "row_"


@built_once
def _enqueue_statement(dialect: str, columns: tuple[str, ...], due_now: bool) -> Any:
    """`enqueue`'s INSERT (ON CONFLICT DO NOTHING on the dedupe key: two callers racing on one
    key get one row and neither an error), built once per shape with every value bound.

    Built per call, the statement (its values, the authorisation's EXISTS and two CASEs), its
    cache key and its compilation cost a call 0.96 ms of CPU, 0.22 ms built once (PostgreSQL,
    in-process, 1,500 calls), in every 秒批 and every other request that notifies. Due now,
    `status` and `last_error_code` come from the EXISTS on the user's authorisation (see
    `enqueue`), bound to the row's own user and template.
    """
    table = cast(Table, NotificationOutbox.__table__)
    values: dict[str, Any] = {
        name: bindparam(_ENQUEUE_PREFIX + name, type_=table.c[name].type) for name in columns
    }
    if due_now:
        authorised = _holds_authorisation(values["user_id"], values["template_id"])
        values["status"] = case(
            (authorised, OutboxStatus.PENDING.value), else_=OutboxStatus.SKIPPED.value
        )
        values["last_error_code"] = case((authorised, None), else_=NO_SUBSCRIPTION)
    return (
        insert_on_conflict(dialect)(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(table.c.id, table.c.status)
    )


def _holds_authorisation(user_id: Any, template_id: Any) -> ColumnElement[bool]:
    """Whether the user has granted a message of the template now (read, not taken)."""
    return (
        select(SubscriptionGrant.id)
        .where(
            SubscriptionGrant.user_id == user_id,
            SubscriptionGrant.template_id == template_id,
            or_(SubscriptionGrant.long_term.is_(True), SubscriptionGrant.one_time_remaining > 0),
        )
        .exists()
    )


def row_values(
    item: Mapping[str, Any], *, now: dt.datetime, catalog: TemplateCatalog
) -> dict[str, Any]:
    """The outbox row of one `enqueue_many` item, pending and due `now` (checked: no personal
    data, a known template)."""
    check_no_personal_data(item["data"])
    template = catalog.by_key(item["template_key"])
    source_type, source_id = item.get("source") or (None, None)
    return {
        "user_id": item["user_id"],
        "template_key": template.key,
        "template_id": template.id,
        "data": dict(item["data"]),
        "page": item.get("page"),
        "dedupe_key": item["dedupe_key"],
        "source_type": source_type,
        "source_id": source_id,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "claim_token": 0,  # nosec B105  # a claim counter reset to 0, not a password
        "grant_reserved": False,
        "next_attempt_at": now,
        "created_at": now,
    }


def insert_many(session: Session, values: list[dict[str, Any]]) -> dict[str, int]:
    """INSERT outbox rows (`row_values`, every row with the same columns) in one statement,
    skipping taken dedupe keys; returns dedupe_key -> id of the rows inserted."""
    if not values:
        return {}
    columns = tuple(values[0])
    if any(tuple(value) != columns for value in values):
        raise ValueError("outbox rows of one INSERT must name the same columns")
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement, rows = _insert_rows_statement(columns)
        inserted = session.execute(statement, rows.params(values))
    else:
        # On the table, not the mapped class: the ORM's bulk INSERT prepares each row as an
        # ORM insert, for nothing loaded into the session.
        table = cast(Table, NotificationOutbox.__table__)
        inserted = session.execute(
            insert_on_conflict(dialect)(table)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(table.c.id, table.c.dedupe_key),
            values,  # as parameters: one cached statement, not one compiled per batch
        )
    return {row.dedupe_key: row.id for row in inserted}


@built_once
def _insert_rows_statement(columns: tuple[str, ...]) -> tuple[Any, RowSource]:
    """PostgreSQL's INSERT of many outbox rows, as one statement for the batch (`RowSource`)."""
    table = cast(Table, NotificationOutbox.__table__)
    rows = RowSource("postgresql", {name: table.c[name].type for name in columns})
    statement = (
        postgresql.insert(table)
        .from_select(list(columns), select(*(rows[name] for name in columns)))
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(table.c.id, table.c.dedupe_key)
    )
    return statement, rows


def enqueue_many(
    session: Session,
    items: list[dict[str, Any]],
    *,
    now: dt.datetime,
    catalog: TemplateCatalog | None = None,
) -> dict[str, int]:
    """Many notifications in one INSERT, pending, for a caller that claims and delivers them
    itself (no worker is woken, no authorisation read: the caller's claim checks it); returns
    dedupe_key -> row id.

    Each item has `enqueue`'s keyword arguments (user_id, template_key, data, page,
    dedupe_key, source). Rows already there under their dedupe key are kept and their ids
    returned too.
    """
    if not items:
        return {}
    catalog = catalog or get_catalog()
    new = insert_many(session, [row_values(item, now=now, catalog=catalog) for item in items])
    missing = [item["dedupe_key"] for item in items if item["dedupe_key"] not in new]
    if missing:
        new.update(
            {
                key: row_id
                for row_id, key in session.execute(
                    select(NotificationOutbox.id, NotificationOutbox.dedupe_key).where(
                        NotificationOutbox.dedupe_key.in_(missing)
                    )
                )
            }
        )
    return new


def find_by_dedupe_key(session: Session, dedupe_key: str) -> NotificationOutbox | None:
    """The outbox row enqueued under `dedupe_key`, if any."""
    return session.scalars(
        select(NotificationOutbox).where(NotificationOutbox.dedupe_key == dedupe_key)
    ).first()


def withdraw_pending(session: Session, dedupe_key: str, *, code: str) -> bool:
    """Skip a notification not yet sent (a reminder for a cancelled appointment).

    Only a pending row is withdrawn: one a worker holds is already on its way to WeChat.
    """
    result = session.execute(
        update(NotificationOutbox)
        .where(
            NotificationOutbox.dedupe_key == dedupe_key,
            NotificationOutbox.status == OutboxStatus.PENDING,
        )
        .values(status=OutboxStatus.SKIPPED, last_error_code=code)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result) == 1


def find_by_source(session: Session, source_type: str, source_id: int) -> list[NotificationOutbox]:
    """Every notification about one domain record, oldest first."""
    return list(
        session.scalars(
            select(NotificationOutbox)
            .where(
                NotificationOutbox.source_type == source_type,
                NotificationOutbox.source_id == source_id,
            )
            .order_by(NotificationOutbox.id)
        )
    )


def list_for_user(
    session: Session, user_id: int, *, offset: int, limit: int
) -> tuple[list[NotificationOutbox], int]:
    """One page of a user's notifications, newest first, and how many there are in all."""
    rows = session.scalars(
        select(NotificationOutbox)
        .where(NotificationOutbox.user_id == user_id)
        .order_by(NotificationOutbox.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    total = session.scalar(
        select(func.count())
        .select_from(NotificationOutbox)
        .where(NotificationOutbox.user_id == user_id)
    )
    return list(rows), int(total or 0)


# -- claiming ---------------------------------------------------------------------------------


def _claimable(now: Any) -> ColumnElement[bool]:
    # Pending and due, or "sending" whose claimer's lease ran out (it crashed or hung).
    return and_(
        NotificationOutbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
        NotificationOutbox.next_attempt_at <= now,
        or_(NotificationOutbox.locked_until.is_(None), NotificationOutbox.locked_until < now),
    )


def _claim_values(now: Any, until: Any) -> dict[Any, Any]:
    """Leased to the claimer until `until` (`now` and `until`: values or bound parameters)."""
    return {
        NotificationOutbox.status: OutboxStatus.SENDING,
        NotificationOutbox.locked_until: until,
        NotificationOutbox.attempts: NotificationOutbox.attempts + 1,
        NotificationOutbox.claim_token: NotificationOutbox.claim_token + 1,
        NotificationOutbox.last_attempt_at: now,
    }


def _load(session: Session, ids: list[int]) -> list[NotificationOutbox]:
    if not ids:
        return []
    # populate_existing: the session may hold these rows from before the claim.
    return list(
        session.scalars(
            select(NotificationOutbox)
            .where(NotificationOutbox.id.in_(ids))
            .order_by(NotificationOutbox.next_attempt_at, NotificationOutbox.id)
            .execution_options(populate_existing=True)
        )
    )


def claim_due(
    session: Session, *, now: dt.datetime, limit: int, lease_seconds: float
) -> list[NotificationOutbox]:
    """Lease up to `limit` due rows to this caller; two callers never get the same row.

    PostgreSQL: the SELECT locks the candidates with FOR UPDATE SKIP LOCKED, so concurrent
    claimers pass over each other's rows instead of waiting. (Two statements on purpose: in
    `UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)` PostgreSQL may run the
    subquery more than once and claim more than `n` rows.) SQLite has no row locks and one
    writer at a time: the UPDATE re-checks the claimable condition under the write lock and
    RETURNING names only the rows it really took. Commit right after to publish the lease.
    """
    candidates = list(
        session.scalars(
            select(NotificationOutbox.id)
            .where(_claimable(now))
            .order_by(NotificationOutbox.next_attempt_at, NotificationOutbox.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    return claim_ids(session, candidates, now=now, lease_seconds=lease_seconds)


def claim_ids(
    session: Session, ids: list[int], *, now: dt.datetime, lease_seconds: float
) -> list[NotificationOutbox]:
    """Lease those of `ids` that are claimable now (one guarded UPDATE ... RETURNING)."""
    if not ids:
        return []
    statement = (
        update(NotificationOutbox)
        .where(NotificationOutbox.id.in_(ids), _claimable(now))
        .values(_claim_values(now, now + dt.timedelta(seconds=lease_seconds)))
        .returning(NotificationOutbox.id)
        .execution_options(synchronize_session=False)
    )
    return _load(session, list(session.scalars(statement)))


@built_once
def _claim_one_statement() -> Any:
    # Built once and bound per claim (one per notification a worker delivers): built per
    # call, the guarded UPDATE took a third of the claim's CPU to construct.
    now: Any = bindparam("claim_now")
    return (
        update(NotificationOutbox)
        .where(NotificationOutbox.id == bindparam("claim_id"), _claimable(now))
        .values(_claim_values(now, bindparam("claim_until")))
        .returning(NotificationOutbox)
        # populate_existing: the session may hold this row from before the claim.
        .execution_options(synchronize_session=False, populate_existing=True)
    )


def claim_one(
    session: Session, outbox_id: int, *, now: dt.datetime, lease_seconds: float
) -> NotificationOutbox | None:
    """Lease one row if it is due and unclaimed: one guarded UPDATE returning the row (None
    when it was not claimable)."""
    return session.scalars(
        _claim_one_statement(),
        {
            "claim_id": outbox_id,
            "claim_now": now,
            "claim_until": now + dt.timedelta(seconds=lease_seconds),
        },
    ).one_or_none()


def renew_lease(
    session: Session, row: NotificationOutbox, *, now: dt.datetime, lease_seconds: float
) -> bool:
    """Extend the caller's lease on `row` right before a send; False if it was lost.

    Guarded by the claim token: a worker whose lease ran out, and whose row another worker
    claimed since, finds nothing to renew and must not send.
    """
    until = now + dt.timedelta(seconds=lease_seconds)
    result = session.execute(
        update(NotificationOutbox)
        .where(
            NotificationOutbox.id == row.id,
            NotificationOutbox.claim_token == row.claim_token,
            NotificationOutbox.status == OutboxStatus.SENDING,
        )
        .values({NotificationOutbox.locked_until: until})
        .execution_options(synchronize_session=False)
    )
    if affected_rows(result) != 1:
        return False
    set_committed_value(row, "locked_until", until)
    return True


def renew_leases(
    session: Session, rows: list[NotificationOutbox], *, now: dt.datetime, lease_seconds: float
) -> set[int]:
    """`renew_lease` for many rows in one UPDATE; returns the ids whose lease was renewed."""
    if not rows:
        return set()
    until = now + dt.timedelta(seconds=lease_seconds)
    renewed = set(
        session.scalars(
            update(NotificationOutbox)
            .where(
                tuple_(NotificationOutbox.id, NotificationOutbox.claim_token).in_(
                    [(row.id, row.claim_token) for row in rows]
                ),
                NotificationOutbox.status == OutboxStatus.SENDING,
            )
            .values({NotificationOutbox.locked_until: until})
            .returning(NotificationOutbox.id)
            .execution_options(synchronize_session=False)
        )
    )
    for row in rows:
        if row.id in renewed:
            set_committed_value(row, "locked_until", until)
    return renewed


# -- subscription grants ----------------------------------------------------------------------


class GrantUse(enum.StrEnum):
    LONG_TERM = "long_term"
    ONE_TIME = "one_time"


def _ensure_grant(session: Session, user_id: int, template_id: str) -> None:
    _insert_ignoring_conflict(
        session,
        SubscriptionGrant,
        {
            "user_id": user_id,
            "template_id": template_id,
            "one_time_remaining": 0,
            "long_term": False,
        },
        ["user_id", "template_id"],
    )


def _grant_update(user_id: int, template_id: str) -> Any:
    return (
        update(SubscriptionGrant)
        .where(SubscriptionGrant.user_id == user_id, SubscriptionGrant.template_id == template_id)
        .execution_options(synchronize_session=False)
    )


def record_subscription_result(
    session: Session,
    user_id: int,
    results: Mapping[str, str],
    now: dt.datetime,
    *,
    catalog: TemplateCatalog | None = None,
) -> list[SubscriptionGrant]:
    """Apply what `wx.requestSubscribeMessage` answered, per template id; return the grants.

    accept: one more one-time message (or the long-term subscription, for long-term
    templates); reject: no new grant, a long-term one ends; ban: the user switched the
    template off, nothing may be sent; filter: WeChat did not ask, nothing changes.
    Counters change by atomic UPDATEs, so two reports at once both count.
    """
    catalog = catalog or get_catalog()
    parsed: dict[str, SubscriptionResult] = {}
    for template_id, raw in results.items():
        if catalog.by_id(template_id) is None:
            raise UnknownTemplate(template_id=template_id)
        try:
            parsed[template_id] = SubscriptionResult(raw)
        except ValueError:
            raise UnknownTemplate("订阅结果无效", template_id=template_id) from None

    for template_id, result in parsed.items():
        template = catalog.by_id(template_id)
        assert template is not None
        _ensure_grant(session, user_id, template_id)
        values: dict[Any, Any] = {
            SubscriptionGrant.last_result: result,
            SubscriptionGrant.updated_at: now,
        }
        if result is SubscriptionResult.ACCEPT:
            if template.long_term:
                values[SubscriptionGrant.long_term] = True
            else:
                values[SubscriptionGrant.one_time_remaining] = (
                    SubscriptionGrant.one_time_remaining + 1
                )
        elif result is SubscriptionResult.REJECT:
            values[SubscriptionGrant.long_term] = False
        elif result is SubscriptionResult.BAN:
            values[SubscriptionGrant.long_term] = False
            values[SubscriptionGrant.one_time_remaining] = 0
        session.execute(_grant_update(user_id, template_id).values(values))
    return grants_for_user(session, user_id)


def grants_for_user(session: Session, user_id: int) -> list[SubscriptionGrant]:
    """The user's grants, freshly read (counters change behind the ORM's back)."""
    return list(
        session.scalars(
            select(SubscriptionGrant)
            .where(SubscriptionGrant.user_id == user_id)
            .order_by(SubscriptionGrant.template_id)
            .execution_options(populate_existing=True)
        )
    )


def reserve_grant(session: Session, user_id: int, template_id: str) -> GrantUse | None:
    """Take the authorisation for one message, or None if the user gave none.

    A long-term subscription is not used up. A one-time grant is taken by a guarded UPDATE
    (`one_time_remaining > 0`), so two senders can never both spend the user's last one.
    """
    return reserve_grants(session, [(user_id, template_id)])[0]


def reserve_grants(session: Session, wanted: list[tuple[int, str]]) -> list[GrantUse | None]:
    """The authorisations for many messages, one per (user_id, template_id) pair, in order,
    in a few statements (`reserve_grant` asks it for one).

    Long-term subscriptions in one SELECT; one-time grants in one guarded UPDATE that takes
    one per distinct pair (on PostgreSQL the two are one statement). A pair wanted twice takes
    its further grants one by one.
    """
    if not wanted:
        return []
    pairs = sorted(set(wanted))
    if session.get_bind().dialect.name == "postgresql":
        long_term, taken = _take_grants_in_one_statement(session, pairs)
    else:
        long_term, taken = _take_grants(session, pairs)
    uses: list[GrantUse | None] = []
    seen: set[tuple[int, str]] = set()
    for pair in wanted:
        if pair in long_term:
            uses.append(GrantUse.LONG_TERM)
        elif pair not in seen:
            uses.append(GrantUse.ONE_TIME if pair in taken else None)
        else:
            uses.append(reserve_grant(session, *pair))
        seen.add(pair)
    return uses


Pairs = set[tuple[int, str]]


def _of_pairs(session: Session, pairs: list[tuple[int, str]]) -> ColumnElement[bool]:
    return pairs_in(session, SubscriptionGrant.user_id, SubscriptionGrant.template_id, pairs)  # type: ignore[no-any-return]


def _take_one_time(matching: ColumnElement[bool]) -> Any:
    """One one-time grant of each `matching` pair that has one and no long-term subscription,
    taken by a guarded UPDATE (two senders never both spend the user's last), returning the
    pairs."""
    return (
        update(SubscriptionGrant)
        .where(
            matching,
            SubscriptionGrant.long_term.is_(False),
            SubscriptionGrant.one_time_remaining > 0,
        )
        .values({SubscriptionGrant.one_time_remaining: SubscriptionGrant.one_time_remaining - 1})
        .returning(SubscriptionGrant.user_id, SubscriptionGrant.template_id)
        .execution_options(synchronize_session=False)
    )


def _long_term(matching: ColumnElement[bool]) -> Any:
    return select(SubscriptionGrant.user_id, SubscriptionGrant.template_id).where(
        matching, SubscriptionGrant.long_term.is_(True)
    )


def _take_grants(session: Session, pairs: list[tuple[int, str]]) -> tuple[Pairs, Pairs]:
    """(pairs with a long-term subscription, pairs whose one-time grant was taken)."""
    long_term = {(row[0], row[1]) for row in session.execute(_long_term(_of_pairs(session, pairs)))}
    one_time = [pair for pair in pairs if pair not in long_term]
    taken = (
        {(row[0], row[1]) for row in session.execute(_take_one_time(_of_pairs(session, one_time)))}
        if one_time
        else set()
    )
    return long_term, taken


def _grants_statement(matching: ColumnElement[bool]) -> Any:
    """The long-term subscriptions and the one-time grants taken, of the `matching` pairs, as
    one statement (an UPDATE in a WITH; PostgreSQL): rows (user_id, template_id, long_term)."""
    taken = _take_one_time(matching).cte("taken")
    long_term = _long_term(matching).add_columns(literal(True).label("long_term"))
    return long_term.union_all(
        select(taken.c.user_id, taken.c.template_id, literal(False).label("long_term"))
    )


@built_once
def _one_pair_grants_statement() -> Any:
    # Built once and bound per call (a single delivery's one pair): built per call, the CTE
    # took more CPU to make its column proxies than the database took to run it.
    return _grants_statement(
        and_(
            SubscriptionGrant.user_id == bindparam("grant_user_id"),
            SubscriptionGrant.template_id == bindparam("grant_template_id"),
        )
    )


def _take_grants_in_one_statement(
    session: Session, pairs: list[tuple[int, str]]
) -> tuple[Pairs, Pairs]:
    """`_take_grants` as one statement on PostgreSQL: a round trip fewer for every
    notification sent, one per 秒批, call and booking."""
    if len(pairs) == 1:
        ((user_id, template_id),) = pairs
        rows = session.execute(
            _one_pair_grants_statement(),
            {"grant_user_id": user_id, "grant_template_id": template_id},
        ).all()
    else:
        rows = session.execute(_grants_statement(_of_pairs(session, pairs))).all()
    return (
        {(row[0], row[1]) for row in rows if row[2]},
        {(row[0], row[1]) for row in rows if not row[2]},
    )


def return_grant(session: Session, user_id: int, template_id: str) -> None:
    """Give back a one-time grant whose message was not delivered."""
    session.execute(
        _grant_update(user_id, template_id).values(
            {SubscriptionGrant.one_time_remaining: SubscriptionGrant.one_time_remaining + 1}
        )
    )


def revoke_grant(session: Session, user_id: int, template_id: str, *, now: dt.datetime) -> None:
    """WeChat says the user holds no authorisation (43101): believe it, whatever we counted."""
    session.execute(
        _grant_update(user_id, template_id).values(
            {
                SubscriptionGrant.one_time_remaining: 0,
                SubscriptionGrant.long_term: False,
                SubscriptionGrant.updated_at: now,
            }
        )
    )


@dataclass(frozen=True)
class SubscriptionState:
    """One template of the catalog and what the user has granted for it."""

    template: Template
    one_time_remaining: int = 0
    long_term: bool = False
    last_result: SubscriptionResult | None = None
    updated_at: dt.datetime | None = None

    @property
    def can_send(self) -> bool:
        return self.long_term or self.one_time_remaining > 0


def subscription_states(
    session: Session, user_id: int, *, catalog: TemplateCatalog | None = None
) -> list[SubscriptionState]:
    """Every template this app sends, with the user's grant (none yet: zero)."""
    grants = {grant.template_id: grant for grant in grants_for_user(session, user_id)}
    states = []
    for template in catalog or get_catalog():
        grant = grants.get(template.id)
        if grant is None:
            states.append(SubscriptionState(template))
            continue
        states.append(
            SubscriptionState(
                template,
                one_time_remaining=grant.one_time_remaining,
                long_term=grant.long_term,
                last_result=grant.last_result,
                updated_at=grant.updated_at,
            )
        )
    return states
