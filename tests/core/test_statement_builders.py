"""Statement builders hand every thread the one statement SQLAlchemy compiled.

SQLAlchemy's compiled cache keeps the statement object that compiled first; executing another
object of the same shape maps the compiled result columns onto it on every call. Builders
cached with `functools.cache` gave each thread racing on the first call an object of its own
(eight threads, eight objects), so the object kept could differ from the one compiled, and a
worker paid that mapping on every take for the rest of its life.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
import time
from typing import Any

from sqlalchemy.dialects import postgresql

import app
from app.db import built_once
from app.queueing import taking

THREADS = 8
# Modules that build an app when imported (a process's entry point), not libraries.
ENTRY_POINTS = {"app.jobs.worker"}


def _race(build: Any, *args: Any) -> set[int]:
    """Ids of what `THREADS` threads got from `build`'s first call, made all at once."""
    build.cache_clear()
    start = threading.Barrier(THREADS)
    got: list[int] = []

    def call() -> None:
        start.wait()
        got.append(id(build(*args)))

    threads = [threading.Thread(target=call) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == THREADS
    return set(got) | {id(build(*args))}


def test_threads_racing_on_the_take_statements_first_build_share_one() -> None:
    # The take's statement is long enough to build that eight threads all arrive while the
    # first builds it (with functools.cache: eight objects).
    assert len(_race(taking._hall_code_take_statement, False)) == 1


def test_a_slow_first_build_is_made_once() -> None:
    builds = 0

    @built_once
    def slow(shape: str) -> object:
        nonlocal builds
        builds += 1
        time.sleep(0.05)  # long enough for every thread to arrive while it builds
        return object()

    assert len(_race(slow, "a")) == 1
    assert builds == 1
    assert slow("b") is not slow("a")  # one statement per argument tuple
    assert builds == 2
    assert slow(shape="a") is slow(shape="a") is not slow("a")  # keyword calls: their own key
    assert builds == 3


def _statement_builders() -> list[tuple[str, Any]]:
    found = []
    for module_info in pkgutil.walk_packages(app.__path__, "app."):
        if module_info.name in ENTRY_POINTS:
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                name.endswith("_statement")
                and callable(value)
                and getattr(value, "__module__", None) == module.__name__
                and hasattr(value, "cache_clear")
            ):
                found.append((f"{module.__name__}.{name}", value))
    return found


def test_every_cached_statement_builder_is_built_once() -> None:
    builders = _statement_builders()
    assert len(builders) >= 20  # the search found the builders
    assert [name for name, build in builders if not isinstance(build, built_once)] == []


def _parameters_rendered_per_execute(statement: Any) -> set[str]:
    """Bound parameters SQLAlchemy renders into the SQL on every execute (an expanding IN, a
    literal_execute): such a statement's string is rebuilt each time instead of reused."""
    compiled = statement.compile(dialect=postgresql.dialect())
    return {bind.key for bind in (*compiled.post_compile_params, *compiled.literal_execute_params)}


def test_the_takes_read_is_rendered_once_not_on_every_execute() -> None:
    # The "already holding a ticket" test was `status IN (<active statuses>)`: an expanding IN,
    # re-rendered on every take (2 % of a worker's CPU under load, profiled).
    statements = (
        taking._hall_code_take_statement(False),
        taking._hall_code_take_statement(True),  # a make-up working day's opening rules
        taking._take_state_statement(),  # the terminal's take and the check-in
    )
    assert [_parameters_rendered_per_execute(statement) for statement in statements] == [
        set(),
        set(),
        set(),
    ]
