"""Periodic domain sweeps, run by the job runner beside the outbox drain.

- queue tickets still active after their hall closed expire (`queueing.expire_leftovers`);
- booked appointments whose check-in window has closed are marked missed, suspending repeat
  no-shows (`appointments.mark_missed`);
- open applications past their statutory limit are marked overdue
  (`applications.deadlines.mark_overdue`);
- 容缺: applicants whose promise to supply materials runs out within a day are reminded, and
  cases whose promise ran out with a material missing end by themselves
  (`applications.tolerance.remind`, `.lapse`);
- published policies past their expiry date expire and their waiting pushes are cancelled
  (`policies.service.expire_due`);
- 告知承诺 checks (核查) still undecided past their day, or past the rectification day, are
  marked overdue for the department (`applications.inspections.mark_overdue`).

All are idempotent and safe in several processes at once (guarded updates, SKIP LOCKED on
PostgreSQL), and cheap when there is nothing to do (one indexed query each). Each process runs
them at most every `interval_seconds`; each sweep commits in its own transaction, so one
failing never blocks the other nor the outbox.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.observability.metrics import count_sweep_rows, count_task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    tickets_expired: int = 0
    appointments_missed: int = 0
    applications_overdue: int = 0
    supply_reminders: int = 0
    applications_lapsed: int = 0
    policies_expired: int = 0
    inspections_overdue: int = 0


class PeriodicSweeps:
    """The domain sweeps of one app, throttled per process."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        config: Mapping[str, Any],
        interval_seconds: float,
        now_fn: Callable[[], dt.datetime],
    ) -> None:
        from app.appointments.rules import AppointmentRules

        self._session_factory = session_factory
        self._rules = AppointmentRules.from_config(config)
        self._interval = dt.timedelta(seconds=interval_seconds)
        self._now_fn = now_fn
        self._last_run: dt.datetime | None = None

    def run_if_due(self) -> SweepResult | None:
        """Run the sweeps unless this process ran them less than an interval ago."""
        now = self._now_fn()
        if self._last_run is not None and now - self._last_run < self._interval:
            return None
        self._last_run = now
        return self.run(now)

    def run(self, now: dt.datetime) -> SweepResult:
        """Run every sweep once, each in its own transaction."""
        # Imported here: app.jobs must not import the domains at import time (no cycles).
        from app.applications import inspections, tolerance
        from app.applications.deadlines import mark_overdue
        from app.appointments.service import mark_missed
        from app.policies.service import expire_due
        from app.queueing.transitions import expire_leftovers

        expired = self._in_transaction("expire_leftovers", lambda s: expire_leftovers(s, now=now))
        missed = self._in_transaction(
            "mark_missed", lambda s: mark_missed(s, rules=self._rules, now=now)
        )
        overdue = self._in_transaction("mark_overdue", lambda s: mark_overdue(s, now=now))
        reminded = self._in_transaction("remind_supply", lambda s: tolerance.remind(s, now=now))
        lapsed = self._in_transaction("lapse_tolerance", lambda s: tolerance.lapse(s, now=now))
        policies = self._in_transaction("expire_policies", lambda s: expire_due(s, now=now))
        checks = self._in_transaction(
            "inspections_overdue", lambda s: inspections.mark_overdue(s, now=now)
        )
        if expired or missed or overdue or reminded or lapsed or policies or checks:
            log.info(
                "periodic sweeps",
                extra={
                    "tickets_expired": expired,
                    "appointments_missed": missed,
                    "applications_overdue": overdue,
                    "supply_reminders": reminded,
                    "applications_lapsed": lapsed,
                    "policies_expired": policies,
                    "inspections_overdue": checks,
                },
            )
        return SweepResult(expired, missed, overdue, reminded, lapsed, policies, checks)

    def _in_transaction(self, name: str, sweep: Callable[[Session], int]) -> int:
        try:
            with self._session_factory() as session:
                count = sweep(session)
                session.commit()
        except Exception:
            log.exception("periodic sweep failed", extra={"sweep": name})
            count_task(f"sweep.{name}", "failed")
            return 0
        count_task(f"sweep.{name}", "ok")
        count_sweep_rows(name, count)
        return count
