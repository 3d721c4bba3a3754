"""`column IN (values)` for the batch statements of the outbox and the push drain.

SQLAlchemy renders an IN list as one parameter per value, so a batch of 50 makes a statement
of 50+ parameters: it is rendered again for every batch, and psycopg converts a statement of
more than 50 parameters anew each time (its cache stops there), about 0.1 ms of CPU per
message of a push batch. On PostgreSQL `column = ANY(:array)` is one parameter: the statement
is cached by both (and prepared by the server). Other databases keep the IN list.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, and_, any_, bindparam, func, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session


def any_of(
    session: Session,
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    values: Collection[Any],
) -> Any:
    """`column IN values`, as one array parameter on PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def pairs_in(
    session: Session,
    first: ColumnElement[Any] | InstrumentedAttribute[Any],
    second: ColumnElement[Any] | InstrumentedAttribute[Any],
    pairs: Collection[tuple[Any, Any]],
) -> Any:
    """`(first, second) IN pairs`, as two array parameters (unnested) on PostgreSQL."""
    if len(pairs) == 1:
        # One pair: two equalities, which the index answers as well, and built in a fraction
        # of the time the table-valued unnest takes to construct and key for the statement
        # cache. (A single delivery's grant on PostgreSQL has its own statement, built once:
        # `outbox._one_pair_grants_statement`.)
        ((a, b),) = pairs
        return and_(first == a, second == b)
    if session.get_bind().dialect.name == "postgresql":
        rows = (
            func.unnest(
                bindparam(None, [a for a, _ in pairs], type_=ARRAY(first.type)),
                bindparam(None, [b for _, b in pairs], type_=ARRAY(second.type)),
            )
            .table_valued("a", "b")
            .render_derived(name="pairs")
        )
        return tuple_(first, second).in_(select(rows.c.a, rows.c.b))
    return tuple_(first, second).in_(pairs)
