"""Background jobs: who delivers the notification outbox, chosen by `JOB_RUNNER`.

- `"inprocess"` (default, `make run`): a daemon thread in each process drains the outbox every
  few seconds and whenever a commit dispatches work (`app.jobs.inprocess`).
- `"dramatiq"`: Dramatiq workers on Redis (`REDIS_URL`); web processes enqueue actors after
  commit, workers run `dramatiq app.jobs.worker` (`app.jobs.dramatiq_broker`).
- `"manual"` (tests): nothing runs in the background; tests call `drain` themselves.

Domain code never calls a runner inside its transaction. `app.notify.outbox.enqueue` notes the
new row on the session (`dispatch.after_commit_dispatch`) and the runner hears of it after the
commit; code with other work to announce after its own commit calls `kick("notify")`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from flask import Flask, current_app

from app.jobs import dispatch
from app.jobs.dispatch import after_commit_dispatch

if TYPE_CHECKING:
    from app.notify.send_rate import RedisWindowSlots, TokenBucket
    from app.notify.sender import SubscribeMessageSender

# Domain modules import `app.jobs.dispatch` (no further imports), so this package imports the
# notify modules only inside functions: no import cycle whichever side is imported first.

__all__ = ["JobRunner", "after_commit_dispatch", "get_runner", "init_app", "kick", "send_gate"]

# The app's one gate of WeChat's send quota (`send_gate`).
_SEND_RATE = "wechat_send_rate"


class JobRunner(Protocol):
    name: str

    def dispatch(self, kind: str, ids: list[int]) -> None:
        """Work of `kind` was committed (for these row ids, if any)."""

    def stop(self, timeout: float = 10.0) -> None:
        """Stop any background thread of this process."""


class ManualRunner:
    """Tests: nothing happens in the background."""

    name = "manual"

    def dispatch(self, kind: str, ids: list[int]) -> None:
        return None

    def stop(self, timeout: float = 10.0) -> None:
        return None


def init_app(app: Flask) -> JobRunner:
    """Build the runner named by JOB_RUNNER and hear every commit of the app's sessions."""
    from app.audit.chain import AuditChain
    from app.db import utcnow
    from app.integrations.wechat import get_wechat
    from app.jobs.settings import JobSettings
    from app.jobs.sweeps import PeriodicSweeps
    from app.notify.send_rate import make_gate

    settings = JobSettings.from_config(app.config)
    # One gate for every sender of the app: the runner's notifications and the policy push
    # drain take WeChat's quota from it (on Redis, every process's too).
    gate = app.extensions[_SEND_RATE] = make_gate(settings)
    database = app.extensions["db"]
    # The runner seals the audit log: its link keys and checkpoint folder.
    audit_chain = AuditChain.from_config(app.config)
    sweeps = PeriodicSweeps(
        database.sessionmaker,
        config=app.config,
        interval_seconds=settings.domain_sweep_seconds,
        now_fn=utcnow,
    )

    def wechat() -> SubscribeMessageSender:
        # Built on first use by the integration; resolved per drain, not at create_app.
        return get_wechat(app)

    runner: JobRunner
    if settings.runner == "inprocess":
        from app.jobs.inprocess import InProcessRunner

        inprocess = InProcessRunner(
            session_factory=database.sessionmaker,
            wechat=wechat,
            settings=settings,
            now_fn=utcnow,
            sweeps=sweeps,
            audit_chain=audit_chain,
            send_rate=gate,
        )
        # Started by the first request (or dispatch), never by create_app itself.
        app.before_request(inprocess.ensure_started)
        runner = inprocess
    elif settings.runner == "dramatiq":
        from app.jobs.dramatiq_broker import DramatiqRunner

        runner = DramatiqRunner(
            session_factory=database.sessionmaker,
            wechat=wechat,
            settings=settings,
            now_fn=utcnow,
            sweeps=sweeps,
            audit_chain=audit_chain,
            send_rate=gate,
        )
    elif settings.runner == "manual":
        runner = ManualRunner()
    else:
        raise RuntimeError(
            f"unknown JOB_RUNNER {settings.runner!r}; expected inprocess, dramatiq or manual"
        )
    app.extensions["jobs"] = runner
    dispatch.install(database.sessionmaker, runner.dispatch)
    return runner


def send_gate(app: Flask) -> TokenBucket | RedisWindowSlots:
    """The app's gate of WeChat's send quota, shared by everything it sends."""
    gate: TokenBucket | RedisWindowSlots = app.extensions[_SEND_RATE]
    return gate


def get_runner(app: Flask | None = None) -> JobRunner:
    """The job runner of `app` (default: the current app)."""
    runner: JobRunner = (app or current_app).extensions["jobs"]
    return runner


def kick(kind: str = "notify", ids: Iterable[int] = ()) -> None:
    """Tell the runner there is work of `kind`; call it after your commit, never before."""
    get_runner().dispatch(kind, list(ids))
