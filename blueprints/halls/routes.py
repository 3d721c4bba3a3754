"""Halls: public details and opening hours; set-up for admins and hall managers; hall codes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from app import calendar
from app.appointments import service as appointments
from app.appointments.rules import AppointmentRules
from app.audit.service import Actor
from app.db import get_session, utcnow
from app.errors import ValidationFailed
from app.halls import service as halls
from app.halls.models import ServiceCategory, Window
from app.integrations.wechat import get_wechat
from app.organisation.models import Hall
from app.queueing import codes, displays, poster, runtime, wxacodes
from app.queueing.errors import HallCodeNotFound
from app.queueing.models import HallCode, HallDisplay
from app.queueing.windows import release_transfers
from app.seals import get_seal_context
from blueprints.authz import current_principal, public, require_scope, staff_required
from blueprints.fields import DATE_PATTERN
from blueprints.halls.schemas import (
    CategoryIn,
    CategoryPatchIn,
    HallCategoryOut,
    HallDetailOut,
    HallOut,
    HallProfileIn,
    HallWindowOut,
    HoursIn,
    SpecialDayIn,
    WindowIn,
    WindowPatchIn,
)
from blueprints.openapi import Blueprint
from blueprints.pagination import PageArgs, page_of, page_schema
from blueprints.queueing.schemas import (
    HallCodeIn,
    HallCodeOut,
    HallDisplayIn,
    HallDisplayIssuedOut,
    HallDisplayOut,
)

blp = Blueprint(
    "halls",
    __name__,
    url_prefix="/halls",
    description="办事大厅：地址、营业时间、业务类别、窗口、大厅码与海报、大厅屏",
)

MANAGERS = ("hall_manager",)


def _manage(hall_id: int) -> None:
    require_scope(MANAGERS, hall_id)
    halls.get_hall(get_session(), hall_id)


def _commit_hall_change(hall_id: int) -> None:
    """Commit a change to the hall's hours or categories with the cancellation of the
    appointments the hall can no longer keep (each citizen is told), in one transaction."""
    session = get_session()
    appointments.cancel_unkeepable(
        session,
        hall_id,
        actor=Actor("staff", current_principal().id),
        rules=AppointmentRules.from_config(current_app.config),
        now=utcnow(),
    )
    session.commit()


def _hall_out(hall: Hall, *, detail: bool = False) -> dict[str, Any]:
    session = get_session()
    now = utcnow()
    day = calendar.local_day(now)
    profile = session.get(halls.HallProfile, hall.id)
    body: dict[str, Any] = {
        "id": hall.id,
        "code": hall.code,
        "name": hall.name,
        "kind": str(hall.kind),
        "town": hall.town,
        "address": profile.address if profile else None,
        "latitude": profile.latitude if profile else None,
        "longitude": profile.longitude if profile else None,
        "phone": profile.phone if profile else None,
        "open_now": halls.is_open(session, hall.id, now),
        "today": [
            {"weekday": day.weekday(), "opens_at": o, "closes_at": c}
            for o, c in halls.hours_on(session, hall.id, day)
        ],
        "day_kind": calendar.day_kind(day),
    }
    if detail:
        body.update(
            open_on_public_holidays=profile.open_on_public_holidays if profile else False,
            makeup_workday_weekday=profile.makeup_workday_weekday if profile else 0,
            late_return_places=profile.late_return_places if profile else None,
            max_recalls=profile.max_recalls if profile else None,
            weekly_hours=[
                {"weekday": d, "opens_at": o, "closes_at": c}
                for d, intervals in halls.weekly_hours(session, hall.id).items()
                for o, c in intervals
            ],
            categories=halls.list_categories(session, hall.id),
            windows=halls.list_windows(session, hall.id),
        )
    return body


@blp.route("")
class HallList(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(HallOut))
    @public
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Every hall with its address, coordinates and today's hours."""
        page = page_of(halls.list_halls(get_session()), args)
        return {**page, "items": [_hall_out(h) for h in page["items"]]}


@blp.route("/<int:hall_id>")
class HallDetail(MethodView):
    @blp.response(200, HallDetailOut)
    @blp.alt_response(404, description="大厅不存在")
    @public
    def get(self, hall_id: int) -> dict[str, Any]:
        """A hall's details, weekly hours, categories and windows."""
        return _hall_out(halls.get_hall(get_session(), hall_id), detail=True)


@blp.route("/<int:hall_id>/profile")
class HallProfileView(MethodView):
    @blp.arguments(HallProfileIn)
    @blp.response(200, HallDetailOut)
    @blp.alt_response(403, description="不是本大厅的主管")
    @staff_required(*MANAGERS)
    def put(self, body: dict[str, Any], hall_id: int) -> dict[str, Any]:
        """Update address, coordinates and calendar rules.

        Booked appointments the new rules no longer let the hall open for are cancelled, and
        each citizen is sent 预约取消通知."""
        _manage(hall_id)
        session = get_session()
        halls.update_profile(session, hall_id, body)
        _commit_hall_change(hall_id)
        return _hall_out(halls.get_hall(session, hall_id), detail=True)


@blp.route("/<int:hall_id>/hours")
class HallHours(MethodView):
    @blp.arguments(HoursIn)
    @blp.response(200, HallDetailOut)
    @blp.alt_response(422, description="时段有误或重叠（INVALID_HOURS）")
    @staff_required(*MANAGERS)
    def put(self, body: dict[str, Any], hall_id: int) -> dict[str, Any]:
        """Replace the weekly opening hours.

        Booked appointments outside the new hours are cancelled, and each citizen is sent
        预约取消通知."""
        _manage(hall_id)
        session = get_session()
        halls.replace_weekly_hours(
            session,
            hall_id,
            [(i["weekday"], i["opens_at"], i["closes_at"]) for i in body["intervals"]],
        )
        _commit_hall_change(hall_id)
        return _hall_out(halls.get_hall(session, hall_id), detail=True)


# The URL carries the date as text; the document says which text.
DAY_IN_PATH = {
    "in": "path",
    "name": "day",
    "required": True,
    "schema": {"type": "string", "format": "date", "pattern": DATE_PATTERN},
}


@blp.route("/<int:hall_id>/special-days/<string:day>")
class HallSpecialDay(MethodView):
    @blp.doc(parameters=[DAY_IN_PATH])
    @blp.arguments(SpecialDayIn)
    @blp.response(200, HallDetailOut)
    @staff_required(*MANAGERS)
    def put(self, body: dict[str, Any], hall_id: int, day: str) -> dict[str, Any]:
        """Close the hall on a date, or open it with special hours (YYYY-MM-DD).

        Booked appointments of that date outside the new hours are cancelled, and each citizen
        is sent 预约取消通知."""
        _manage(hall_id)
        session = get_session()
        halls.set_special_day(session, hall_id, _date(day), **body)
        _commit_hall_change(hall_id)
        return _hall_out(halls.get_hall(session, hall_id), detail=True)

    @blp.doc(parameters=[DAY_IN_PATH])
    @blp.response(200, HallDetailOut)
    @staff_required(*MANAGERS)
    def delete(self, hall_id: int, day: str) -> dict[str, Any]:
        """Remove a date's override."""
        _manage(hall_id)
        session = get_session()
        halls.delete_special_day(session, hall_id, _date(day))
        _commit_hall_change(hall_id)
        return _hall_out(halls.get_hall(session, hall_id), detail=True)


def _date(raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise halls.InvalidHours("日期格式应为 YYYY-MM-DD") from None


@blp.route("/<int:hall_id>/categories")
class HallCategories(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(HallCategoryOut))
    @public
    def get(self, args: dict[str, Any], hall_id: int) -> dict[str, Any]:
        """The hall's service categories."""
        halls.get_hall(get_session(), hall_id)
        return page_of(halls.list_categories(get_session(), hall_id), args)

    @blp.arguments(CategoryIn)
    @blp.response(201, HallCategoryOut)
    @blp.alt_response(409, description="名称或字母重复（HALL_CONFLICT）")
    @staff_required(*MANAGERS)
    def post(self, body: dict[str, Any], hall_id: int) -> ServiceCategory:
        """Add a service category."""
        _manage(hall_id)
        session = get_session()
        category = halls.create_category(session, hall_id, body)
        session.commit()
        return category


@blp.route("/categories/<int:category_id>")
class HallCategory(MethodView):
    @blp.arguments(CategoryPatchIn)
    @blp.response(200, HallCategoryOut)
    @staff_required(*MANAGERS)
    def patch(self, body: dict[str, Any], category_id: int) -> ServiceCategory:
        """Change a category (cap, typical minutes, matters, ...).

        Stopping it (`active: false`) cancels its booked appointments still to come, and each
        citizen is sent 预约取消通知."""
        session = get_session()
        category = halls.get_category(session, category_id)
        _manage(category.hall_id)
        halls.update_category(session, category, body)
        _commit_hall_change(category.hall_id)
        return category


@blp.route("/<int:hall_id>/windows")
class HallWindows(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(HallWindowOut))
    @public
    def get(self, args: dict[str, Any], hall_id: int) -> dict[str, Any]:
        """The hall's windows with their status and categories."""
        halls.get_hall(get_session(), hall_id)
        return page_of(halls.list_windows(get_session(), hall_id), args)

    @blp.arguments(WindowIn)
    @blp.response(201, HallWindowOut)
    @blp.alt_response(409, description="窗口号重复（HALL_CONFLICT）")
    @staff_required(*MANAGERS)
    def post(self, body: dict[str, Any], hall_id: int) -> Window:
        """Add a window serving some categories."""
        _manage(hall_id)
        session = get_session()
        window = halls.create_window(session, hall_id, **body)
        session.commit()
        return window


@blp.route("/windows/<int:window_id>")
class HallWindow(MethodView):
    @blp.arguments(WindowPatchIn)
    @blp.response(200, HallWindowOut)
    @staff_required(*MANAGERS)
    def patch(self, body: dict[str, Any], window_id: int) -> Window:
        """Change a window's number, label or categories.

        Numbers transferred to this window in a category it no longer serves go back to that
        category's queue, keeping their place."""
        session = get_session()
        window = halls.get_window(session, window_id)
        _manage(window.hall_id)
        halls.update_window(session, window, body)
        release_transfers(session, window)
        session.commit()
        return window


# -- printed hall codes ------------------------------------------------------------------------


def _code_out(code: HallCode) -> dict[str, Any]:
    try:
        token: str | None = (
            codes.printed_token(runtime().settings, code) if code.revoked_at is None else None
        )
    except codes.CodeRevoked:
        token = None
    return {
        "id": code.id,
        "hall_id": code.hall_id,
        "key_id": code.key_id,
        "label": code.label,
        "token": token,
        "created_at": code.created_at,
        "revoked_at": code.revoked_at,
    }


def _hall_code(hall_id: int, code_id: int) -> HallCode:
    _manage(hall_id)
    code = get_session().get(HallCode, code_id)
    if code is None or code.hall_id != hall_id:
        raise HallCodeNotFound()
    return code


@blp.route("/<int:hall_id>/codes")
class HallCodes(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(HallCodeOut))
    @staff_required(*MANAGERS)
    def get(self, args: dict[str, Any], hall_id: int) -> dict[str, Any]:
        """The hall's printed codes, live and revoked."""
        _manage(hall_id)
        page = page_of(codes.printed_codes(get_session(), hall_id), args)
        return {**page, "items": [_code_out(c) for c in page["items"]]}

    @blp.arguments(HallCodeIn)
    @blp.response(201, HallCodeOut)
    @staff_required(*MANAGERS)
    def post(self, body: dict[str, Any], hall_id: int) -> dict[str, Any]:
        """Issue a new printed code (e.g. for another entrance)."""
        _manage(hall_id)
        session = get_session()
        code = codes.create_printed_code(
            session,
            runtime().settings,
            hall_id,
            label=body["label"],
            staff_id=current_principal().id,
        )
        session.commit()
        return _code_out(code)


@blp.route("/<int:hall_id>/codes/<int:code_id>/revoke")
class HallCodeRevoke(MethodView):
    @blp.response(200, HallCodeOut)
    @staff_required(*MANAGERS)
    def post(self, hall_id: int, code_id: int) -> dict[str, Any]:
        """Revoke a printed code: scanning it is refused from now on."""
        session = get_session()
        code = _hall_code(hall_id, code_id)
        if code.revoked_at is None:
            code.revoked_at = utcnow()
        session.commit()
        return _code_out(code)


@blp.route("/<int:hall_id>/codes/<int:code_id>/qr.<string:fmt>")
class HallCodeImage(MethodView):
    @blp.alt_response(200, description="image/png 或 image/svg+xml")
    @staff_required(*MANAGERS)
    def get(self, hall_id: int, code_id: int, fmt: str) -> Response:
        """The printable QR image of a live code (png or svg)."""
        code = _hall_code(hall_id, code_id)
        if code.revoked_at is not None:
            raise codes.CodeRevoked()
        token = codes.printed_token(runtime().settings, code)
        if fmt == "png":
            return Response(codes.qr_png(token), mimetype="image/png")
        if fmt == "svg":
            return Response(codes.qr_svg(token), mimetype="image/svg+xml")
        raise ValidationFailed("图片格式只能是 png 或 svg")


@blp.route("/<int:hall_id>/codes/<int:code_id>/wxacode.png")
class HallCodeMiniProgramCode(MethodView):
    @blp.alt_response(200, description="image/png：小程序码，scene 为大厅码令牌")
    @blp.alt_response(422, description="大厅码不存在或已停用")
    @blp.alt_response(502, description="微信拒绝生成（小程序页面未发布或配置有误）")
    @blp.alt_response(503, description="微信服务暂时不可用")
    @staff_required(*MANAGERS)
    def get(self, hall_id: int, code_id: int) -> Response:
        """The printable mini-program code of a live code: opens the scan page with its token."""
        code = _hall_code(hall_id, code_id)
        if code.revoked_at is not None:
            raise codes.CodeRevoked()
        session = get_session()
        # The first request stores WeChat's image (see app/queueing/wxacodes.py): a GET that
        # writes, but only a cache of what any later GET would fetch again.
        png = wxacodes.printed_wxacode(
            session,
            get_wechat(),
            runtime().settings,
            code,
            page=current_app.config["QUEUE_WXACODE_PAGE"],
        )
        session.commit()
        return Response(png, mimetype="image/png")


@blp.route("/<int:hall_id>/codes/<int:code_id>/poster.<any(pdf, png):fmt>")
class HallCodePoster(MethodView):
    @blp.alt_response(200, description="application/pdf 或 image/png：A4 取号海报")
    @blp.alt_response(422, description="大厅码已停用")
    @blp.alt_response(502, description="微信拒绝生成小程序码")
    @blp.alt_response(503, description="微信服务暂时不可用")
    @staff_required(*MANAGERS)
    def get(self, hall_id: int, code_id: int, fmt: str) -> Response:
        """The printable A4 poster of a live code: hall name, both codes, how to take a number."""
        code = _hall_code(hall_id, code_id)
        if code.revoked_at is not None:
            raise codes.CodeRevoked()
        session = get_session()
        content = poster.poster_content(
            session,
            get_wechat(),
            runtime().settings,
            code,
            page=current_app.config["QUEUE_WXACODE_PAGE"],
        )
        session.commit()  # the mini-program code, stored on first use (see above)
        fonts = get_seal_context().fonts
        if fmt == "png":
            return Response(poster.render_png(content, fonts), mimetype="image/png")
        pdf = poster.render_pdf(content, fonts, printed_on=calendar.local_day(utcnow()))
        return Response(pdf, mimetype="application/pdf")


# -- entrance screens ---------------------------------------------------------------------------


@blp.route("/<int:hall_id>/displays")
class HallDisplays(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(HallDisplayOut))
    @staff_required(*MANAGERS)
    def get(self, args: dict[str, Any], hall_id: int) -> dict[str, Any]:
        """The hall's registered screens, live and revoked, newest first."""
        _manage(hall_id)
        return page_of(displays.list_for_hall(get_session(), hall_id), args)

    @blp.arguments(HallDisplayIn)
    @blp.response(201, HallDisplayIssuedOut)
    @staff_required(*MANAGERS)
    def post(self, body: dict[str, Any], hall_id: int) -> dict[str, Any]:
        """Register a screen: its token (shown only now) lets it show the entrance code."""
        _manage(hall_id)
        session = get_session()
        issued = displays.register(
            session, hall_id, name=body["name"], staff_id=current_principal().id, now=utcnow()
        )
        session.commit()
        shown = issued.display
        fields = ("id", "hall_id", "name", "created_at", "last_used_at", "revoked_at")
        return {**{name: getattr(shown, name) for name in fields}, "token": issued.token}


@blp.route("/<int:hall_id>/displays/<int:display_id>/revoke")
class HallDisplayRevoke(MethodView):
    @blp.response(200, HallDisplayOut)
    @blp.alt_response(404, description="大厅屏不存在")
    @staff_required(*MANAGERS)
    def post(self, hall_id: int, display_id: int) -> HallDisplay:
        """Revoke a screen's token at once (the screen was replaced, lost or stolen)."""
        _manage(hall_id)
        session = get_session()
        display = displays.get_for_hall(session, hall_id, display_id)
        displays.revoke(session, display, staff_id=current_principal().id, now=utcnow())
        session.commit()
        return display
