"""The department's post-approval inspections (核查): the open tasks by due date, and their
outcome: confirmed, rectification by a date, or revoked (licence revoked, holder excluded)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from app.applications import inspections
from app.applications.models import Application, Inspection, InspectionStatus
from app.db import get_session, utcnow
from app.matters import catalogue
from blueprints.applications.review import departments_reviewed
from blueprints.authz import current_principal, staff_required
from blueprints.fields import BeijingTime, CalendarDate
from blueprints.openapi import Blueprint
from blueprints.pagination import PageArgs, PageRequest, page_from, page_schema

blp = Blueprint(
    "inspections",
    __name__,
    url_prefix="/review/inspections",
    description="告知承诺核查：待核查任务（按期限排序）、核查属实、责令整改、撤销许可",
)

REVIEWER = "reviewer"
NOTE = fields.String(validate=validate.Length(min=2, max=500), metadata={"description": "核查意见"})


class InspectionArgs(PageArgs):
    open = fields.Boolean(load_default=True, metadata={"description": "只看未办结的（默认）"})


class InspectionOut(Schema):
    id = fields.Integer(required=True)
    application_number = fields.String(required=True)
    matter_code = fields.String(required=True)
    status = fields.String(
        required=True, validate=validate.OneOf([s.value for s in InspectionStatus])
    )
    due_at = BeijingTime(required=True)
    rectify_by = BeijingTime(allow_none=True)
    overdue = fields.Boolean(
        required=True, metadata={"description": "核查（或整改）期限已过仍未办结"}
    )
    note = fields.String(allow_none=True)
    closed_at = BeijingTime(allow_none=True)


class NoteIn(Schema):
    note = NOTE


class RequiredNoteIn(Schema):
    note = fields.String(required=True, validate=validate.Length(min=2, max=500))


class RectifyIn(RequiredNoteIn):
    by = CalendarDate(required=True, metadata={"description": "整改期限（含当日）"})


def _out(inspection: Inspection) -> dict[str, Any]:
    application = get_session().get(Application, inspection.application_id)
    assert application is not None
    return {
        "id": inspection.id,
        "application_number": application.number,
        "matter_code": application.matter_code,
        "status": inspection.status,
        "due_at": inspection.due_at,
        "rectify_by": inspection.rectify_by,
        "overdue": bool(inspection.overdue) and inspection.status in inspections.OPEN,
        "note": inspection.note,
        "closed_at": inspection.closed_at,
    }


def _find(inspection_id: int) -> Inspection:
    return inspections.for_reviewer(get_session(), departments_reviewed(), inspection_id)


@blp.route("")
class Inspections(MethodView):
    @blp.arguments(InspectionArgs, location="query")
    @blp.response(200, page_schema(InspectionOut))
    @staff_required(REVIEWER)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """My departments' inspections, the earliest due first."""
        page = PageRequest.of(args)
        rows, total = inspections.queue(
            get_session(),
            departments_reviewed(),
            open_only=args["open"],
            offset=page.offset,
            limit=page.limit,
        )
        return page_from([_out(r) for r in rows], total, args)


@blp.route("/<int:inspection_id>/confirm")
class Confirm(MethodView):
    @blp.arguments(NoteIn)
    @blp.response(200, InspectionOut)
    @blp.alt_response(404, description="INSPECTION_NOT_FOUND（含其他部门的）")
    @blp.alt_response(409, description="INSPECTION_CLOSED")
    @staff_required(REVIEWER)
    def post(self, body: dict[str, Any], inspection_id: int) -> dict[str, Any]:
        """The holder's situation matches the commitment."""
        session, inspection = get_session(), _find(inspection_id)
        inspections.confirm(
            session,
            inspection,
            staff_id=current_principal().id,
            note=body.get("note"),
            now=utcnow(),
        )
        session.commit()
        return _out(inspection)


@blp.route("/<int:inspection_id>/rectify")
class Rectify(MethodView):
    @blp.arguments(RectifyIn)
    @blp.response(200, InspectionOut)
    @blp.alt_response(404, description="INSPECTION_NOT_FOUND")
    @blp.alt_response(409, description="INSPECTION_CLOSED")
    @staff_required(REVIEWER)
    def post(self, body: dict[str, Any], inspection_id: int) -> dict[str, Any]:
        """Short of the commitment but curable: to be put right by a date."""
        session, inspection = get_session(), _find(inspection_id)
        inspections.require_rectification(
            session,
            inspection,
            staff_id=current_principal().id,
            note=body["note"],
            by=body["by"],
            now=utcnow(),
        )
        session.commit()
        return _out(inspection)


@blp.route("/<int:inspection_id>/revoke")
class Revoke(MethodView):
    @blp.arguments(RequiredNoteIn)
    @blp.response(200, InspectionOut)
    @blp.alt_response(404, description="INSPECTION_NOT_FOUND")
    @blp.alt_response(409, description="INSPECTION_CLOSED")
    @staff_required(REVIEWER)
    def post(self, body: dict[str, Any], inspection_id: int) -> dict[str, Any]:
        """The commitment was false: the licence is revoked and the holder excluded from
        commitment approval for the matter's configured period."""
        session, inspection = get_session(), _find(inspection_id)
        application = session.get(Application, inspection.application_id)
        assert application is not None
        version = catalogue.get_version(
            session, application.matter_code, application.matter_version
        )
        inspections.revoke(
            session,
            inspection,
            version.content,
            staff_id=current_principal().id,
            note=body["note"],
            now=utcnow(),
        )
        session.commit()
        return _out(inspection)
