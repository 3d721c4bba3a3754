"""The reviewer desk's API: my departments' queue by deadline, one application with its rule
results, claim / return / transfer, approve (the seal applied), reject, request 补正, and the
stored decision replayed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response
from flask.views import MethodView

from app.applications import review, statistics
from app.applications.errors import ApplicationNotFound
from app.calendar import local_day, local_instant
from app.db import get_session, utcnow
from app.errors import ValidationFailed
from app.materials import service as materials
from app.matters import catalogue, rules
from app.seals.lifecycle import SealActor
from blueprints.applications.present import (
    material_download,
    material_storage,
    present,
    request_id,
    services,
)
from blueprints.applications.schemas import (
    ApplicationOut,
    QueueArgs,
    ReasonIn,
    ReplayOut,
    RequiredReasonIn,
    ReviewTransferIn,
    StatisticsArgs,
    StatisticsOut,
)
from blueprints.authz import ADMIN_ROLE, current_principal, staff_required
from blueprints.logins import keeping_writes
from blueprints.openapi import Blueprint
from blueprints.pagination import PageRequest, page_from, page_schema

blp = Blueprint(
    "review",
    __name__,
    url_prefix="/review/applications",
    description="审查：本部门待办（按时限排序）、认领、转交、准予许可（加盖电子印章）、不予许可、补正",
)

REVIEWER = "reviewer"


def departments_reviewed() -> list[int] | None:
    """The departments the caller reviews for; None: every one (admin, unscoped reviewer)."""
    principal = current_principal()
    if principal.has_role(ADMIN_ROLE):
        return None
    return principal.scopes.get(REVIEWER)


def _find(number: str) -> Any:
    return review.for_reviewer(get_session(), departments_reviewed(), number)


@blp.route("")
class Queue(MethodView):
    @blp.arguments(QueueArgs, location="query")
    @blp.response(200, page_schema(ApplicationOut))
    @staff_required(REVIEWER)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Open applications of my departments, the nearest statutory deadline first."""
        session = get_session()
        page = PageRequest.of(args)
        statuses = [args["status"]] if args.get("status") else None
        rows, total = review.queue(
            session,
            departments_reviewed(),
            **({"statuses": statuses} if statuses else {}),
            assignee_id=current_principal().id if args["mine"] else None,
            offset=page.offset,
            limit=page.limit,
        )
        return page_from([present(session, a, viewer="reviewer") for a in rows], total, args)


@blp.route("/statistics")
class Statistics(MethodView):
    @blp.arguments(StatisticsArgs, location="query")
    @blp.response(200, StatisticsOut)
    @blp.alt_response(422, description="日期范围有误")
    @staff_required(REVIEWER)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """My departments' matters: instant share, median time to decision, overdue count, of
        the applications submitted over local days from..to (at most a year)."""
        end = args.get("end") or local_day(utcnow())
        start = args.get("start") or end - dt.timedelta(days=29)
        if end < start or (end - start).days > 366:
            raise ValidationFailed("日期范围有误", fields={"from": ["不能晚于 to，且不超过一年"]})
        items = statistics.per_matter(
            get_session(),
            departments_reviewed(),
            since=local_instant(start, dt.time(0, 0)),
            until=local_instant(end + dt.timedelta(days=1), dt.time(0, 0)),
        )
        return {"start": start, "end": end, "items": items}


@blp.route("/<string:number>")
class ReviewOne(MethodView):
    @blp.response(200, ApplicationOut)
    @blp.alt_response(404, description="APPLICATION_NOT_FOUND（含其他部门的办件）")
    @staff_required(REVIEWER)
    def get(self, number: str) -> dict[str, Any]:
        """One application: form, rule results with reasons, history."""
        return present(get_session(), _find(number), viewer="reviewer")


def _act(number: str, action: Any) -> dict[str, Any]:
    session = get_session()
    application = _find(number)
    with keeping_writes(session):
        action(session, application)
    session.commit()
    return present(session, application, viewer="reviewer")


@blp.route("/<string:number>/materials/<string:material_id>")
class ReviewMaterial(MethodView):
    @blp.response(200, description="材料文件（原样，inline 预览）")
    @blp.alt_response(404, description="APPLICATION_NOT_FOUND / MATERIAL_NOT_FOUND")
    @staff_required(REVIEWER)
    def get(self, number: str, material_id: str) -> Response:
        """An uploaded material of an application of my departments, for inline preview."""
        session = get_session()
        row, data = materials.read(session, material_storage(), _find(number), material_id)
        return material_download(row, data)


@blp.route("/<string:number>/claim")
class Claim(MethodView):
    @blp.response(200, ApplicationOut)
    @blp.alt_response(409, description="ILLEGAL_TRANSITION：已被认领或已办结")
    @staff_required(REVIEWER)
    def post(self, number: str) -> dict[str, Any]:
        """Take an accepted application from the queue."""
        staff_id, now = current_principal().id, utcnow()
        return _act(number, lambda s, a: review.claim(s, a, staff_id=staff_id, now=now))


@blp.route("/<string:number>/return")
class Return(MethodView):
    @blp.arguments(ReasonIn)
    @blp.response(200, ApplicationOut)
    @blp.alt_response(409, description="NOT_ASSIGNEE / ILLEGAL_TRANSITION")
    @staff_required(REVIEWER)
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Put an application I hold back in the queue."""
        staff_id, now = current_principal().id, utcnow()
        return _act(
            number,
            lambda s, a: review.return_to_queue(
                s, a, staff_id=staff_id, reason=body.get("reason"), now=now
            ),
        )


@blp.route("/<string:number>/transfer")
class Transfer(MethodView):
    @blp.arguments(ReviewTransferIn)
    @blp.response(200, ApplicationOut)
    @blp.alt_response(409, description="NOT_ASSIGNEE")
    @blp.alt_response(422, description="TRANSFER_TARGET_INVALID：须为本部门审查人员")
    @staff_required(REVIEWER)
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Hand an application I hold to another reviewer of its department."""
        staff_id, now = current_principal().id, utcnow()
        return _act(
            number,
            lambda s, a: review.transfer(
                s,
                a,
                staff_id=staff_id,
                to_staff_id=body["to_staff_id"],
                reason=body.get("reason"),
                now=now,
            ),
        )


@blp.route("/<string:number>/request-supplement")
class RequestSupplement(MethodView):
    @blp.arguments(RequiredReasonIn)
    @blp.response(200, ApplicationOut)
    @blp.alt_response(409, description="NOT_ASSIGNEE / ILLEGAL_TRANSITION")
    @staff_required(REVIEWER)
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """一次性告知: ask for everything to correct; the statutory clock stops meanwhile."""
        staff_id, now = current_principal().id, utcnow()
        return _act(
            number,
            lambda s, a: review.request_supplement(
                s, a, staff_id=staff_id, reason=body["reason"], now=now
            ),
        )


@blp.route("/<string:number>/reject")
class Reject(MethodView):
    @blp.arguments(RequiredReasonIn)
    @blp.response(200, ApplicationOut)
    @blp.alt_response(409, description="NOT_ASSIGNEE / ILLEGAL_TRANSITION")
    @staff_required(REVIEWER)
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Refuse with the reason (shown to the applicant)."""
        staff_id, now = current_principal().id, utcnow()
        return _act(
            number,
            lambda s, a: review.reject(s, a, staff_id=staff_id, reason=body["reason"], now=now),
        )


@blp.route("/<string:number>/approve")
class Approve(MethodView):
    @blp.arguments(ReasonIn)
    @blp.response(200, ApplicationOut)
    @blp.alt_response(403, description="SEAL_USE_FORBIDDEN：印章未授权给该角色、模板或事项")
    @blp.alt_response(
        409,
        description="NOT_ASSIGNEE / ILLEGAL_TRANSITION / SEAL_NOT_USABLE / "
        "MATERIALS_STILL_MISSING（容缺材料未补齐）",
    )
    @staff_required(REVIEWER)
    def post(self, body: dict[str, Any], number: str) -> dict[str, Any]:
        """Approve: the licence is sealed with the department's seal and put in the holder's
        wallet."""
        principal, now = current_principal(), utcnow()
        actor = SealActor(
            kind="staff",
            id=principal.id,
            roles=principal.roles,
            scopes=principal.scopes,
        )
        session = get_session()
        return _act(
            number,
            lambda s, a: review.approve(
                s,
                services(session),
                a,
                actor=actor,
                reason=body.get("reason"),
                now=now,
                request_id=request_id(),
            ),
        )


@blp.route("/<string:number>/decision/replay")
class Replay(MethodView):
    @blp.response(200, ReplayOut)
    @blp.alt_response(404, description="APPLICATION_NOT_FOUND，或该办件没有规则决定")
    @staff_required(REVIEWER)
    def get(self, number: str) -> dict[str, Any]:
        """Evaluate the stored decision's facts and parameters again under the rules of the
        version it was filed under: the same outcome, rule by rule."""
        session = get_session()
        application = _find(number)
        version = catalogue.get_version(
            session, application.matter_code, application.matter_version
        )
        rule_set = catalogue.rule_set_of(version)
        stored = application.decision
        if rule_set is None or not stored or not stored.get("results"):
            raise ApplicationNotFound("该办件没有规则决定", number=number)
        replayed = rules.replay(rule_set, stored).as_json()
        same = [(r["id"], r["result"]) for r in replayed["results"]] == [
            (r["id"], r["result"]) for r in stored["results"]
        ] and replayed["outcome"] == stored["outcome"]
        return {"same": same, "stored": stored, "replayed": replayed}
