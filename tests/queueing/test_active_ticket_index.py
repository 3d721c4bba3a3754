"""The one-active-ticket index, as migrated, and the take's held-ticket test agree on what
"active" means: both are `ACTIVE_TICKET_SQL`, whose text the migration fixed.

Alembic's model-to-migration comparison does not look at a partial index's predicate, so a
status made final in the model alone would leave the database's index, and the uniqueness it
enforces, with the old meaning while the take's test had the new one.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.queueing.models import ACTIVE_TICKET_SQL, FINAL_STATUSES, TicketStatus

INDEX = "uq_tickets_active_user_category"


def _migrated_index_sql(session: Session) -> str:
    if session.get_bind().dialect.name == "postgresql":
        query = (
            "SELECT indexdef FROM pg_indexes"
            " WHERE indexname = :name AND schemaname = current_schema()"
        )
    else:
        query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
    return str(session.execute(text(query), {"name": INDEX}).scalar_one())


def test_the_migrated_index_leaves_out_exactly_the_final_statuses(session: Session) -> None:
    index_sql = _migrated_index_sql(session)
    named = {status for status in TicketStatus if f"'{status.value}'" in index_sql}
    assert named == set(FINAL_STATUSES)


def test_the_takes_test_names_exactly_the_final_statuses() -> None:
    named = {status for status in TicketStatus if f"'{status.value}'" in ACTIVE_TICKET_SQL}
    assert named == set(FINAL_STATUSES)
    assert ACTIVE_TICKET_SQL.startswith("status NOT IN (")
