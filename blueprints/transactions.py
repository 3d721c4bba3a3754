"""Views whose statements commit one by one.

A view runs in one transaction by default, committed by the view itself. A view marked
`@statement_commits` declares that each of its writes is one statement standing on its own;
on PostgreSQL its session then commits every statement as it ends (`app.db.use_statement_session`).
The citizen's take is the one such view: its only write draws the number and writes the ticket
and its transition in one statement, under the category's counter row lock, which every take
of the category waits for. In a transaction that lock was held until the COMMIT a round trip
later, after the worker thread had its turn at the interpreter again; measured under load
(`bench/queue_load.py`), about ten of sixteen connections were waiting for it.

The session is made by a `before_request` hook registered before the authorisation hook, the
first to use the database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import request

from app.db import use_statement_session
from blueprints.http import view_method

F = TypeVar("F", bound=Callable[..., Any])

STATEMENT_COMMITS_ATTRIBUTE = "__statement_commits__"


def statement_commits(fn: F) -> F:
    """Each write of this view is one statement that stands on its own (see the module)."""
    setattr(fn, STATEMENT_COMMITS_ATTRIBUTE, True)
    return fn


def open_request_session() -> None:
    """A `before_request` hook: the session a marked view needs, before anything uses one."""
    if request.routing_exception is None and getattr(
        view_method(), STATEMENT_COMMITS_ATTRIBUTE, False
    ):
        use_statement_session()
