"""Rotation of the personal-data keys (DATA_KEYS): which key seals each stored value, and
re-sealing every value under the current key so that an old key can be retired.

The sealed columns are the models' `*_sealed` text columns (the naming rule of
`app.identity.models.User`); each is listed here with the context `FieldCipher` binds it to,
and `unlisted_sealed_columns()` finds one a model added without listing it here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import inspect, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.db import Base
from app.security.crypto import CryptoError, FieldCipher

SEALED_SUFFIX = "_sealed"


@dataclass(frozen=True)
class SealedColumn:
    """A column holding `FieldCipher` tokens, and the context they are sealed for."""

    attribute: InstrumentedAttribute[Any]
    context: str

    @property
    def name(self) -> str:
        """`table.column`, as the reports print it."""
        return f"{self.attribute.class_.__tablename__}.{self.attribute.key}"

    @property
    def primary_key(self) -> Any:
        (column,) = inspect(self.attribute.class_).primary_key  # one-column keys only
        return column


def sealed_columns() -> tuple[SealedColumn, ...]:
    """Every column of personal data sealed with the app's `FieldCipher`."""
    from app.enterprises.models import AgentAuthorisation
    from app.enterprises.service import AGENT_NAME_CONTEXT
    from app.identity.citizens import PHONE_CONTEXT, SESSION_KEY_CONTEXT
    from app.identity.models import User
    from app.identity.realname import ID_NUMBER_CONTEXT, NAME_CONTEXT
    from app.policies.accounts import ACCOUNT_CONTEXT
    from app.policies.models import ReceivingAccount

    return (
        SealedColumn(User.session_key_sealed, SESSION_KEY_CONTEXT),
        SealedColumn(User.phone_sealed, PHONE_CONTEXT),
        SealedColumn(User.real_name_sealed, NAME_CONTEXT),
        SealedColumn(User.id_number_sealed, ID_NUMBER_CONTEXT),
        SealedColumn(AgentAuthorisation.agent_name_sealed, AGENT_NAME_CONTEXT),
        SealedColumn(ReceivingAccount.account_number_sealed, ACCOUNT_CONTEXT),
    )


def unlisted_sealed_columns() -> list[str]:
    """`table.column` of every `*_sealed` column of the models that `sealed_columns` omits:
    its values would never be re-sealed, and removing an old key would lose them."""
    import app.models  # noqa: F401  (every model registered on the metadata)

    listed = {column.name for column in sealed_columns()}
    return sorted(
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith(SEALED_SUFFIX) and f"{table.name}.{column.name}" not in listed
    )


def key_report(session: Session) -> dict[str, Counter[str]]:
    """For each sealed column, how many stored values each key id sealed."""
    report: dict[str, Counter[str]] = {}
    for column in sealed_columns():
        counts: Counter[str] = Counter()
        values: Iterator[str] = session.scalars(
            select(column.attribute).where(column.attribute.is_not(None))
        ).yield_per(1000)
        for token in values:
            counts[_key_id(token)] += 1
        report[column.name] = counts
    return report


def _key_id(token: str) -> str:
    try:
        return FieldCipher.key_id_of(token)
    except IndexError:
        return "?"  # not a token of ours at all


@dataclass
class ColumnResult:
    """What re-sealing one column did."""

    column: str
    resealed: int = 0
    # Values that changed between reading and writing (the app wrote them meanwhile, under
    # the current key already), and values no listed key opens.
    raced: int = 0
    unreadable: list[str] = field(default_factory=list)


def reencrypt_all(
    session_factory: Callable[[], Session], cipher: FieldCipher, *, batch: int = 500
) -> Iterator[ColumnResult]:
    """Re-seal every value not under the current key, column by column, one transaction per
    batch; yields each column's result when it is done. Safe to run again (it picks only
    values under other keys) and beside the running app (a value is replaced only if it is
    still the one read)."""
    for column in sealed_columns():
        yield _reencrypt_column(session_factory, cipher, column, batch)


def _reencrypt_column(
    session_factory: Callable[[], Session], cipher: FieldCipher, column: SealedColumn, batch: int
) -> ColumnResult:
    result = ColumnResult(column.name)
    attribute, pk = column.attribute, column.primary_key
    current = f"v1:{cipher.current_key_id}:"
    after: Any = None
    while True:
        with session_factory() as session:
            query = (
                select(pk, attribute)
                .where(attribute.is_not(None), ~attribute.startswith(current, autoescape=True))
                .order_by(pk)
                .limit(batch)
            )
            if after is not None:
                query = query.where(pk > after)
            rows = session.execute(query).all()
            if not rows:
                return result
            for row_id, token in rows:
                try:
                    plain = cipher.decrypt(str(token), context=column.context)
                except CryptoError:
                    result.unreadable.append(str(row_id))  # an id, never the value
                    continue
                written = session.execute(
                    update(attribute.class_)
                    .where(pk == row_id, attribute == token)
                    .values({attribute.key: cipher.encrypt(plain, context=column.context)})
                    .execution_options(synchronize_session=False)
                )
                if written.rowcount == 1:  # type: ignore[attr-defined]
                    result.resealed += 1
                else:
                    result.raced += 1
            session.commit()
            after = rows[-1][0]
