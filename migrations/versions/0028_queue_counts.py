"""Queued tickets per category and day, kept by triggers, so a take reads one row instead of
counting the queue (a heap visit per queued ticket on PostgreSQL).

The triggers move the count on every insert and delete of a ticket and every change of its
status, category or day, whichever code (or person at a psql prompt) makes it. A transfer
leaves one category's queue for another's: PostgreSQL's trigger locks the two rows in key
order, so two opposite transfers cannot deadlock.

Revision ID: 0028_queue_counts
Revises: 0027_call_next_idempotency
Create Date: 2026-12-05 23:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028_queue_counts"
down_revision = "0027_call_next_idempotency"
branch_labels = None
depends_on = None

QUEUED = "('waiting', 'transferred')"  # app.queueing.models.QUEUED_STATUSES
SAME_PLACE = "NEW.category_id = OLD.category_id AND NEW.service_day = OLD.service_day"
ADD_ONE = (
    "INSERT INTO queue_counts (category_id, service_day, queued)"
    " VALUES (NEW.category_id, NEW.service_day, 1)"
    " ON CONFLICT (category_id, service_day) DO UPDATE SET queued = queue_counts.queued + 1;"
)
TAKE_ONE = (
    "UPDATE queue_counts SET queued = queued - 1"
    " WHERE category_id = OLD.category_id AND service_day = OLD.service_day;"
)

POSTGRESQL = [
    f"""
    CREATE OR REPLACE FUNCTION tickets_keep_queue_counts() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        was_queued boolean := TG_OP <> 'INSERT' AND OLD.status IN {QUEUED};
        is_queued boolean := TG_OP <> 'DELETE' AND NEW.status IN {QUEUED};
    BEGIN
        IF was_queued AND is_queued THEN
            IF {SAME_PLACE} THEN
                RETURN NULL;
            END IF;
            IF (NEW.category_id, NEW.service_day) < (OLD.category_id, OLD.service_day) THEN
                {ADD_ONE}
                {TAKE_ONE}
                RETURN NULL;
            END IF;
        END IF;
        IF was_queued THEN
            {TAKE_ONE}
        END IF;
        IF is_queued THEN
            {ADD_ONE}
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER tickets_queue_counts
    AFTER INSERT OR DELETE OR UPDATE OF status, category_id, service_day ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_keep_queue_counts()
    """,
]
POSTGRESQL_DOWN = [
    "DROP TRIGGER IF EXISTS tickets_queue_counts ON tickets",
    "DROP FUNCTION IF EXISTS tickets_keep_queue_counts()",
]

MOVED = "UPDATE OF status, category_id, service_day ON tickets"
SQLITE = [
    f"""
    CREATE TRIGGER tickets_queue_count_insert AFTER INSERT ON tickets
    WHEN NEW.status IN {QUEUED}
    BEGIN {ADD_ONE} END
    """,
    f"""
    CREATE TRIGGER tickets_queue_count_leave AFTER {MOVED}
    WHEN OLD.status IN {QUEUED} AND NOT (NEW.status IN {QUEUED} AND {SAME_PLACE})
    BEGIN {TAKE_ONE} END
    """,
    f"""
    CREATE TRIGGER tickets_queue_count_enter AFTER {MOVED}
    WHEN NEW.status IN {QUEUED} AND NOT (OLD.status IN {QUEUED} AND {SAME_PLACE})
    BEGIN {ADD_ONE} END
    """,
    f"""
    CREATE TRIGGER tickets_queue_count_delete AFTER DELETE ON tickets
    WHEN OLD.status IN {QUEUED}
    BEGIN {TAKE_ONE} END
    """,
]
SQLITE_DOWN = [
    f"DROP TRIGGER IF EXISTS tickets_queue_count_{name}"
    for name in ("insert", "leave", "enter", "delete")
]


def upgrade() -> None:
    op.create_table(
        "queue_counts",
        sa.Column(
            "category_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("service_day", sa.Date(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["service_categories.id"],
            name=op.f("fk_queue_counts_category_id_service_categories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("category_id", "service_day", name=op.f("pk_queue_counts")),
    )
    # The table and its triggers in one transaction: no ticket moves between the count and
    # the first trigger (PostgreSQL; SQLite writes one at a time anyway).
    op.execute(
        "INSERT INTO queue_counts (category_id, service_day, queued)"
        f" SELECT category_id, service_day, count(*) FROM tickets WHERE status IN {QUEUED}"
        " GROUP BY category_id, service_day"
    )
    dialect = op.get_bind().dialect.name
    for statement in POSTGRESQL if dialect == "postgresql" else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in POSTGRESQL_DOWN if dialect == "postgresql" else SQLITE_DOWN:
        op.execute(statement)
    op.drop_table("queue_counts")
