"""Appointments: slots of a hall, the citizen's bookings, check-in, and the hall's view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask.views import MethodView

from app.appointments import checkin, service
from app.appointments.errors import SlotNotFound
from app.appointments.models import Appointment, AppointmentSlot
from app.appointments.rules import AppointmentRules
from app.audit.service import Actor
from app.calendar import local_day
from app.db import get_session, utcnow
from app.identity.realname import real_name_of
from app.queueing import runtime
from app.security import get_cipher
from app.security.masking import mask_name
from blueprints.appointments.schemas import (
    AppointmentListQuery,
    AppointmentOut,
    BookIn,
    CheckInOut,
    HallAppointmentsPage,
    HallAppointmentsQuery,
    HallCheckInIn,
    SlotCapacityIn,
    SlotOut,
    SlotQuery,
    TerminalCheckInIn,
)
from blueprints.authz import (
    citizen_required,
    current_principal,
    public,
    require_scope,
    staff_required,
)
from blueprints.idempotency import idempotency_doc, idempotency_key
from blueprints.openapi import Blueprint
from blueprints.pagination import PageRequest, page_from, page_of, page_schema

blp = Blueprint("appointments", __name__, url_prefix="", description="预约：时段、预约、签到")

HALL_STAFF = ("window_clerk", "hall_manager")


@dataclass
class _WithName:
    """An appointment as the hall sees it: the citizen's masked name beside it."""

    appointment: Appointment
    citizen_name: str | None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.appointment, name)


def rules() -> AppointmentRules:
    return AppointmentRules.from_config(current_app.config)


@blp.route("/halls/<int:hall_id>/appointment-slots")
class HallSlots(MethodView):
    @blp.arguments(SlotQuery, location="query")
    @blp.response(200, page_schema(SlotOut))
    @public
    def get(self, query: dict[str, Any], hall_id: int) -> dict[str, Any]:
        """The hall's bookable slots on its next working days, with remaining places."""
        slots = service.list_slots(
            get_session(),
            hall_id,
            category_id=query.get("category_id"),
            day=query.get("day"),
            rules=rules(),
            now=utcnow(),
        )
        return page_of(slots, query)


@blp.route("/appointment-slots/<int:slot_id>")
class SlotCapacity(MethodView):
    @blp.arguments(SlotCapacityIn)
    @blp.response(200, SlotOut)
    @blp.alt_response(409, description="CAPACITY_BELOW_BOOKED：不能低于已预约人数")
    @staff_required("hall_manager")
    def patch(self, body: dict[str, Any], slot_id: int) -> AppointmentSlot:
        """Change a slot's capacity (hall manager of its hall)."""
        session = get_session()
        slot = session.get(AppointmentSlot, slot_id)
        if slot is None:
            raise SlotNotFound()
        require_scope(("hall_manager",), slot.hall_id)
        principal = current_principal()
        service.set_capacity(
            session, slot, body["capacity"], actor=Actor("staff", principal.id), now=utcnow()
        )
        session.commit()
        return slot


@blp.route("/me/appointments")
class MyAppointments(MethodView):
    @blp.arguments(AppointmentListQuery, location="query")
    @blp.response(200, page_schema(AppointmentOut))
    @citizen_required
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The caller's appointments: upcoming ones soonest first, or all newest first."""
        appointments = service.list_for_user(
            get_session(), current_principal().id, upcoming_only=query["upcoming"], now=utcnow()
        )
        return page_of(appointments, query)

    @blp.arguments(BookIn)
    @blp.response(201, AppointmentOut)
    @blp.alt_response(409, description="SLOT_FULL 已约满 / ALREADY_BOOKED 当天已预约该类业务")
    @blp.alt_response(403, description="BOOKING_SUSPENDED：多次失约，暂停预约")
    @blp.alt_response(422, description="SLOT_NOT_BOOKABLE / IDEMPOTENCY_KEY_REUSED")
    @blp.doc(parameters=[idempotency_doc("重试同一请求时带相同的值，返回第一次的预约")])
    @citizen_required
    def post(self, body: dict[str, Any]) -> Appointment:
        """Book a slot (one per category and day; Idempotency-Key honoured)."""
        session = get_session()
        booking = service.book(
            session,
            user_id=current_principal().id,
            slot_id=body["slot_id"],
            idempotency_key=idempotency_key(),
            rules=rules(),
            now=utcnow(),
        )
        session.commit()
        return booking.appointment


@blp.route("/me/appointments/<int:appointment_id>")
class MyAppointment(MethodView):
    @blp.response(200, AppointmentOut)
    @citizen_required
    def get(self, appointment_id: int) -> Appointment:
        """One of the caller's appointments."""
        return service.get_for_user(get_session(), appointment_id, current_principal().id)


@blp.route("/me/appointments/<int:appointment_id>/cancel")
class CancelAppointment(MethodView):
    @blp.response(200, AppointmentOut)
    @blp.alt_response(409, description="CANCEL_TOO_LATE / APPOINTMENT_NOT_ACTIVE")
    @citizen_required
    def post(self, appointment_id: int) -> Appointment:
        """Cancel before the slot starts; the place is given back."""
        session = get_session()
        appointment = service.get_for_user(session, appointment_id, current_principal().id)
        service.cancel(session, appointment, now=utcnow())
        session.commit()
        return appointment


@blp.route("/me/appointments/<int:appointment_id>/check-in")
class HallCodeCheckIn(MethodView):
    @blp.arguments(HallCheckInIn)
    @blp.response(200, CheckInOut)
    @blp.alt_response(409, description="CHECK_IN_TOO_EARLY / CHECK_IN_TOO_LATE / 已持有号码")
    @blp.alt_response(422, description="大厅码伪造、过期、吊销或不是预约的大厅")
    @citizen_required
    def post(self, body: dict[str, Any], appointment_id: int) -> dict[str, Any]:
        """Check in on arrival by scanning the hall's code: the appointment becomes a
        priority number (from 30 min before to 15 min after the slot start)."""
        session = get_session()
        appointment = service.get_for_user(session, appointment_id, current_principal().id)
        result = checkin.check_in_with_hall_code(
            session,
            appointment,
            token=body["code"],
            latitude=body.get("latitude"),
            longitude=body.get("longitude"),
            settings=runtime().settings,
            rules=rules(),
            now=utcnow(),
        )
        session.commit()
        return {"appointment": result.appointment, "ticket": result.ticket}


@blp.route("/terminal/appointments/check-in")
class TerminalCheckIn(MethodView):
    @blp.arguments(TerminalCheckInIn)
    @blp.response(200, CheckInOut)
    @blp.alt_response(404, description="NO_APPOINTMENT_TO_CHECK_IN：此人当前没有可签到的预约")
    @blp.alt_response(409, description="个人码已使用 / 签到时间不符")
    @staff_required(*HALL_STAFF)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """A window terminal or kiosk checks a citizen in by scanning their personal code."""
        require_scope(HALL_STAFF, body["hall_id"])
        session = get_session()
        result = checkin.check_in_with_personal_code(
            session,
            token=body["code"],
            hall_id=body["hall_id"],
            appointment_id=body.get("appointment_id"),
            staff_id=current_principal().id,
            settings=runtime().settings,
            rules=rules(),
            now=utcnow(),
        )
        session.commit()
        return {"appointment": result.appointment, "ticket": result.ticket}


@blp.route("/halls/<int:hall_id>/appointments")
class HallAppointments(MethodView):
    @blp.arguments(HallAppointmentsQuery, location="query")
    @blp.response(200, HallAppointmentsPage)
    @staff_required(*HALL_STAFF)
    def get(self, query: dict[str, Any], hall_id: int) -> dict[str, Any]:
        """The hall's appointments of a day (names masked), with counts by status."""
        require_scope(HALL_STAFF, hall_id)
        session = get_session()
        day = query.get("day") or local_day(utcnow())
        page = PageRequest.of(query)
        cipher = get_cipher()
        items = []
        for appointment, user in service.hall_day(
            session, hall_id, day, offset=page.offset, limit=page.limit
        ):
            name = real_name_of(cipher, user) if user is not None else None
            items.append(_WithName(appointment, mask_name(name) if name else None))
        counts = service.count_by_status(session, hall_id, day)
        return page_from(items, sum(counts.values()), query, day=day, counts=counts)
