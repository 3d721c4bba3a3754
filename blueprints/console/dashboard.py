"""The hall dashboard (hall manager) and the district view across the halls.

A hall manager scoped to halls sees their halls' days; an unscoped hall manager or an admin is
the district manager, who also sees the district view. The figures are the queue statistics
service's (as the API's /halls/<id>/queue-stats), the waiting counts the hall screen's, the
follow-ups the ratings service's; closing one goes through the service the API calls.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from marshmallow import Schema, validate
from wtforms import DateField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.appointments import service as appointments
from app.calendar import local_day
from app.db import get_session, utcnow
from app.errors import Forbidden
from app.halls import service as halls
from app.halls.models import Window
from app.identity.models import User
from app.identity.realname import masked_identity
from app.organisation.models import Hall
from app.queue_stats import service as stats
from app.queue_stats.service import GroupBy, StatsRow
from app.queueing.board import board, waiting_by_hall
from app.ratings import service as ratings
from app.ratings.errors import FollowUpClosed, FollowUpNotFound
from app.ratings.models import FollowUpStatus, RatingFollowUp
from app.security import get_cipher
from blueprints.authz import ADMIN_ROLE, current_principal, require_scope
from blueprints.console import blp
from blueprints.console.access import console_page
from blueprints.console.charts import BarChart, horizontal_bars
from blueprints.ratings.schemas import CloseFollowUpIn

MANAGER = "hall_manager"
MANAGERS = (MANAGER,)


def _api_length(schema: type[Schema], name: str) -> validate.Length:
    """The length rule the API's schema puts on a field, so the form enforces the same one."""
    return next(v for v in schema().fields[name].validators if isinstance(v, validate.Length))


RECTIFICATION = _api_length(CloseFollowUpIn, "rectification")


class _Day(DateField):
    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError("请选择有效的日期") from None


class DayForm(FlaskForm):
    """Which day to look at (a GET form: nothing changes, no CSRF token)."""

    class Meta:
        csrf = False

    day = _Day("日期", validators=[Optional()])


class CloseForm(FlaskForm):
    rectification = TextAreaField(
        "整改情况",
        validators=[
            DataRequired("请填写整改措施及结果"),
            Length(
                min=RECTIFICATION.min,
                max=RECTIFICATION.max,
                message=f"整改情况为 {RECTIFICATION.min} 至 {RECTIFICATION.max} 字",
            ),
        ],
    )


# --- who manages what ----------------------------------------------------------------------------


def _managed_halls() -> list[int] | None:
    """The halls the caller manages; None for the district manager (admin, or unscoped)."""
    principal = current_principal()
    if principal.has_role(ADMIN_ROLE):
        return None
    return principal.scopes.get(MANAGER)


def _require_district() -> None:
    if _managed_halls() is not None:
        raise Forbidden("区级看板仅限区级管理人员查看")


def _day_of(form: DayForm) -> dt.date:
    """The day the form names, else today (then shown in the picker)."""
    today = local_day(utcnow())
    if not form.validate():
        return today
    if form.day.data is None:
        form.day.data = today
    return form.day.data


# --- display values ------------------------------------------------------------------------------


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def _shown(minutes: float | None) -> str:
    return "—" if minutes is None else f"{minutes:g}"


def _day_stats(hall_id: int, day: dt.date, group_by: GroupBy) -> list[StatsRow]:
    return stats.compute(
        get_session(),
        hall_id,
        start=day,
        end=day,
        group_by=group_by,
        max_days=current_app.config["QUEUE_STATS_MAX_DAYS"],
    )


def _waiting(hall_id: int, day: dt.date) -> dict[int, int] | None:
    """Waiting tickets per category now, as the hall screen counts them; None on another day."""
    now = utcnow()
    if day != local_day(now):
        return None
    return {c["id"]: c["waiting"] for c in board(get_session(), hall_id, now=now)["categories"]}


def _headline(hall_id: int, day: dt.date, waiting: int | None) -> dict[str, Any]:
    """The hall's day in figures: issued, served, waiting (None: not today), no-shows, mean
    wait."""
    rows = _day_stats(hall_id, day, GroupBy.HALL)
    row = rows[0] if rows else None
    return {
        "issued": row.issued if row and row.issued is not None else 0,
        "served": row.served if row else 0,
        "no_shows": row.no_shows if row else 0,
        "waiting": "—" if waiting is None else waiting,
        "wait_mean": _shown(_minutes(row.wait_mean_seconds if row else None)),
    }


def _categories(hall_id: int, day: dt.date, waiting: dict[int, int] | None) -> list[dict[str, Any]]:
    """Per category: the statistics, the waiting count and the appointment fill of the day."""
    session = get_session()
    by_category = {r.category_id: r for r in _day_stats(hall_id, day, GroupBy.CATEGORY)}
    fill = appointments.fill_by_category(session, hall_id, day)
    shown = []
    for category in halls.list_categories(session, hall_id):
        row = by_category.get(category.id)
        if row is None and not category.active and category.id not in fill:
            continue  # a retired category with nothing that day
        booked, capacity = fill.get(category.id, (0, 0))
        times = {
            "wait_mean": _minutes(row.wait_mean_seconds) if row else None,
            "wait_p90": _minutes(row.wait_p90_seconds) if row else None,
            "service_mean": _minutes(row.service_mean_seconds) if row else None,
            "service_p90": _minutes(row.service_p90_seconds) if row else None,
        }
        shown.append(
            {
                "name": f"{category.prefix} {category.name}",
                "issued": row.issued if row and row.issued is not None else 0,
                "served": row.served if row else 0,
                "no_shows": row.no_shows if row else 0,
                "waiting": "—" if waiting is None else waiting.get(category.id, 0),
                **times,
                **{key + "_shown": _shown(value) for key, value in times.items()},
                "booked": booked,
                "capacity": capacity,
                "fill": f"{booked / capacity:.0%}" if capacity else "—",
                "fill_tag": ("danger" if booked >= capacity else "ok") if capacity else None,
            }
        )
    return shown


def _charts(categories: list[dict[str, Any]]) -> list[BarChart]:
    return [
        horizontal_bars(
            "各类业务平均等候时间（分钟）",
            [(c["name"], c["wait_mean"] or 0) for c in categories],
            unit="分",
        ),
        horizontal_bars(
            "各类业务平均办理时间（分钟）",
            [(c["name"], c["service_mean"] or 0) for c in categories],
            unit="分",
        ),
    ]


def _follow_up_rows(hall_id: int) -> list[dict[str, Any]]:
    """The hall's open follow-ups of bad ratings, most urgent first, the citizen masked."""
    session = get_session()
    now = utcnow()
    cipher = get_cipher()
    rows = []
    for follow_up in ratings.list_follow_ups(
        session, hall_id=hall_id, status=FollowUpStatus.OPEN, overdue_only=False, now=now
    ):
        rating = follow_up.rating
        user = session.get(User, rating.user_id)
        window = session.get(Window, rating.window_id) if rating.window_id else None
        category = halls.get_category(session, rating.category_id) if rating.category_id else None
        rows.append(
            {
                "id": follow_up.id,
                "level": rating.level.label,
                "comment": rating.comment or "（未填写评价内容）",
                "rated_at": rating.rated_at,
                "due_at": follow_up.due_at,
                "overdue": follow_up.due_at < now,
                "citizen": (masked_identity(cipher, user).get("name") if user else None)
                or "未实名",
                "where": " · ".join(
                    part
                    for part in (
                        f"{category.prefix} {category.name}" if category else "",
                        f"{window.number}号窗口" if window else "",
                    )
                    if part
                )
                or "—",
            }
        )
    return rows


def _hall_page(
    hall_id: int,
    *,
    day_form: DayForm,
    failed: tuple[int, CloseForm] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    require_scope(MANAGERS, hall_id)
    hall = halls.get_hall(get_session(), hall_id)
    day = _day_of(day_form)
    waiting = _waiting(hall_id, day)
    categories = _categories(hall_id, day, waiting)
    follow_ups = _follow_up_rows(hall_id)
    forms = {f["id"]: CloseForm(formdata=None) for f in follow_ups}
    if failed is not None and failed[0] in forms:
        forms[failed[0]] = failed[1]
    managed = _managed_halls()
    others = (
        [{"id": h.id, "name": h.name} for h in _halls_named(managed) if h.id != hall_id]
        if managed
        else []
    )
    page = render_template(
        "console/dashboard_hall.html",
        hall=hall,
        day=day,
        is_today=day == local_day(utcnow()),
        day_form=day_form,
        figures=_headline(hall_id, day, None if waiting is None else sum(waiting.values())),
        categories=categories,
        charts=_charts(categories),
        follow_ups=follow_ups,
        forms=forms,
        district=managed is None,
        others=others,
    )
    return page, status


def _halls_named(ids: list[int]) -> list[Hall]:
    session = get_session()
    return [h for h in halls.list_halls(session) if h.id in ids]


# --- views ---------------------------------------------------------------------------------------


@blp.get("/dashboard")
@console_page(*MANAGERS)
def dashboard() -> Any:
    """The manager's own hall, or the district view for the district manager."""
    managed = _managed_halls()
    if managed is None:
        return redirect(url_for("console.dashboard_district"))
    if not managed:
        raise Forbidden("当前账号未分配管理的大厅")
    if len(managed) == 1:
        return redirect(url_for("console.dashboard_hall", hall_id=managed[0]))
    return render_template("console/dashboard_pick.html", halls=_halls_named(managed))


@blp.get("/dashboard/halls/<int:hall_id>")
@console_page(*MANAGERS)
def dashboard_hall(hall_id: int) -> tuple[str, int]:
    form = DayForm(request.args)
    return _hall_page(hall_id, day_form=form, status=200 if form.validate() else 422)


@blp.post("/dashboard/halls/<int:hall_id>/follow-ups/<int:follow_up_id>/close")
@console_page(*MANAGERS)
def dashboard_close_follow_up(hall_id: int, follow_up_id: int) -> Any:
    """Close a bad rating's follow-up with the rectification made (as the API's close)."""
    require_scope(MANAGERS, hall_id)
    session = get_session()
    follow_up: RatingFollowUp = ratings.get_follow_up(session, follow_up_id)
    if follow_up.hall_id != hall_id:
        raise FollowUpNotFound()  # another hall's, or a department's (the reviewers')
    form = CloseForm()
    if not form.validate_on_submit():
        return _hall_page(
            hall_id, day_form=DayForm(formdata=None), failed=(follow_up_id, form), status=422
        )
    try:
        ratings.close_follow_up(
            session,
            follow_up,
            rectification=(form.rectification.data or "").strip(),
            staff_id=current_principal().id,
            now=utcnow(),
        )
    except FollowUpClosed as closed:
        session.rollback()
        flash(closed.message, "warning")
    else:
        session.commit()
        flash("差评整改已办结，整改情况已记录", "success")
    return redirect(url_for("console.dashboard_hall", hall_id=hall_id) + "#follow-ups")


@blp.get("/dashboard/halls/<int:hall_id>/stats.csv")
@console_page(*MANAGERS)
def dashboard_csv(hall_id: int) -> Response:
    """The day's statistics by category: the API's CSV, from a page the manager can reach."""
    require_scope(MANAGERS, hall_id)
    day = _day_of(DayForm(request.args))
    rows = _day_stats(hall_id, day, GroupBy.CATEGORY)
    by = GroupBy.CATEGORY.value
    filename = f"queue-stats-{hall_id}-{day:%Y%m%d}-{day:%Y%m%d}-{by}.csv"
    # The BOM makes spreadsheet programs read the Chinese header as UTF-8 (as the API does).
    return Response(
        "\ufeff" + stats.to_csv(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@blp.get("/dashboard/district")
@console_page(*MANAGERS)
def dashboard_district() -> tuple[str, int]:
    """Every hall's day in the same headline figures, each linking to its dashboard."""
    _require_district()
    session = get_session()
    form = DayForm(request.args)
    day = _day_of(form)
    now = utcnow()
    waiting = waiting_by_hall(session, day) if day == local_day(now) else None
    rows = []
    for hall in halls.list_halls(session):
        open_follow_ups = ratings.list_follow_ups(
            session, hall_id=hall.id, status=FollowUpStatus.OPEN, overdue_only=False, now=now
        )
        rows.append(
            {
                "id": hall.id,
                "name": hall.name,
                "code": hall.code,
                **_headline(hall.id, day, None if waiting is None else waiting.get(hall.id, 0)),
                "follow_ups": len(open_follow_ups),
                "overdue": sum(1 for f in open_follow_ups if f.due_at < now),
            }
        )
    totals = {
        key: sum(r[key] for r in rows if isinstance(r[key], int))
        for key in ("issued", "served", "no_shows", "follow_ups", "overdue")
    }
    totals["waiting"] = (
        sum(r["waiting"] for r in rows) if all(isinstance(r["waiting"], int) for r in rows) else "—"
    )
    page = render_template(
        "console/dashboard_district.html",
        day=day,
        is_today=day == local_day(now),
        day_form=form,
        rows=rows,
        totals=totals,
    )
    return page, 200 if form.validate() else 422
