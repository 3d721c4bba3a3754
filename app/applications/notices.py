"""Telling the applicant about each state change, through the outbox (审批结果通知)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.applications.models import Application, ApplicationEvent, ApplicationStatus
from app.calendar import LOCAL_TZ
from app.matters.models import Matter
from app.notify import outbox

# phrase values: at most five characters, as WeChat requires.
_RESULTS = {
    ApplicationStatus.ACCEPTED: ("已受理", "已转人工审查，请留意进度"),
    ApplicationStatus.UNDER_REVIEW: ("审查中", "审查人员正在办理"),
    ApplicationStatus.SUPPLEMENT_REQUESTED: ("待补正", "请按一次性告知补正材料"),
    ApplicationStatus.APPROVED: ("准予许可", "电子证照已存入卡包"),
    ApplicationStatus.REJECTED: ("不予许可", "请查看不予许可的理由"),
    ApplicationStatus.WITHDRAWN: ("已撤回", "申请已撤回"),
    ApplicationStatus.TERMINATED: ("终止办理", "容缺材料逾期未补交"),
}


def notify(
    session: Session,
    application: Application,
    matter: Matter,
    *,
    now: dt.datetime,
    seq: int | None = None,
) -> None:
    """Queue a message for the application's new state (once per transition: keyed by the
    number of transitions so far, `seq` when the caller has counted them)."""
    result = _RESULTS.get(ApplicationStatus(application.status))
    if result is None:
        return
    phrase, tip = result
    if seq is None:
        seq = session.scalar(
            select(func.count()).where(ApplicationEvent.application_id == application.id)
        )
    _enqueue(
        session,
        application,
        matter,
        phrase,
        tip,
        key=f"application:{application.id}:{seq}",
        now=now,
    )


def remind_supply(
    session: Session,
    application: Application,
    matter: Matter,
    *,
    due: dt.datetime,
    now: dt.datetime,
) -> None:
    """容缺: the missing materials are due soon (once per promise)."""
    tip = f"请于{due.astimezone(LOCAL_TZ):%m月%d日%H:%M}前补交材料"
    _enqueue(
        session,
        application,
        matter,
        "待补交材料",
        tip,
        key=f"application:{application.id}:supply:{due:%Y%m%d%H%M}",
        now=now,
    )


def _enqueue(
    session: Session,
    application: Application,
    matter: Matter,
    phrase: str,
    tip: str,
    *,
    key: str,
    now: dt.datetime,
) -> None:
    outbox.enqueue(
        session,
        user_id=application.applicant_user_id,
        template_key="approval_result",
        data={
            "thing1": matter.name[:20],
            "phrase2": phrase,
            "time3": f"{now.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}",
            "thing4": tip,
        },
        page=f"pages/application/detail?number={application.number}",
        dedupe_key=key,
        source=("application", application.id),
        now=now,
    )
