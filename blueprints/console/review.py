"""The reviewer desk: the department's queue by deadline, an application's whole file (form,
materials with inline preview, rule results, history, deadlines), the decisions, and the
post-approval checks of 告知承诺 permits.

The views call the services the review API calls, scoped the same way
(`departments_reviewed`); an application of another department is not found, as in the API.
"""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import DateField, TextAreaField
from wtforms.validators import DataRequired, Length

from app.applications import inspections, review
from app.applications.models import Application, Inspection
from app.applications.workflow import load_all
from app.db import get_session, utcnow
from app.identity.models import StaffAccount, User
from app.identity.realname import masked_identity
from app.materials import service as materials
from app.matters import catalogue
from app.rules.expressions import Tri
from app.seals.lifecycle import SealActor
from app.security import get_cipher
from blueprints.applications.present import (
    material_download,
    material_storage,
    present,
    request_id,
    services,
)
from blueprints.applications.review import REVIEWER, departments_reviewed
from blueprints.authz import current_principal
from blueprints.console import blp
from blueprints.console.access import console_page
from blueprints.logins import keeping_writes

RESULT_TAGS = {Tri.PASS.value: "ok", Tri.FAIL.value: "danger", Tri.UNKNOWN.value: "warn"}
INSPECTION_TEXT = {
    "open": "待核查",
    "rectifying": "整改中",
    "confirmed": "属实",
    "revoked": "已撤销",
}


class ReasonForm(FlaskForm):
    reason = TextAreaField(
        "理由（将告知申请人）",
        validators=[
            DataRequired("请填写理由"),
            Length(min=2, max=500, message="理由为 2 至 500 字"),
        ],
    )


class NoteForm(FlaskForm):
    note = TextAreaField(
        "核查意见", validators=[DataRequired("请填写核查意见"), Length(min=2, max=500)]
    )


class RectifyForm(NoteForm):
    by = DateField("整改期限", validators=[DataRequired("请选择整改期限")])


def _find(number: str) -> Application:
    return review.for_reviewer(get_session(), departments_reviewed(), number)


def _staff_names(ids: set[int | None]) -> dict[int, str]:
    session = get_session()
    names = {}
    for staff_id in ids:
        if staff_id:
            account = session.get(StaffAccount, staff_id)
            names[staff_id] = account.display_name if account else str(staff_id)
    return names


def _matter_names(codes: set[str]) -> dict[str, str]:
    session = get_session()
    return {code: catalogue.get_matter(session, code).name for code in codes}


@blp.get("/review")
@console_page(REVIEWER)
def review_queue() -> str:
    """My departments' open applications, the nearest statutory deadline first."""
    session = get_session()
    mine = request.args.get("mine") == "1"
    rows, total = review.queue(
        session,
        departments_reviewed(),
        assignee_id=current_principal().id if mine else None,
        offset=0,
        limit=200,
    )
    items = [present(session, a, viewer="reviewer") for a in rows]
    names = _staff_names({a["assignee_staff_id"] for a in items})
    matters = _matter_names({a["matter_code"] for a in items})
    return render_template(
        "console/review_queue.html",
        items=items,
        total=total,
        mine=mine,
        assignees=names,
        matters=matters,
    )


def _form_rows(application: Application, form: dict[str, Any]) -> list[tuple[str, str]]:
    """The answers under the titles the form schema gives them."""
    version = catalogue.get_version(
        get_session(), application.matter_code, application.matter_version
    )
    properties = version.content["form"].get("properties", {})
    rows = []
    for key, value in form.items():
        title = properties.get(key, {}).get("title", key)
        shown = "是" if value is True else "否" if value is False else str(value)
        rows.append((title, shown))
    return rows


ACTORS = {"applicant": "申请人", "reviewer": "审查人员", "system": "系统"}


def _history(application: Application, events: list[Any]) -> list[dict[str, Any]]:
    """Each transition in the workflow's own words: what was done, by whom, why."""
    flow = load_all()[(application.workflow, application.workflow_version)]
    labels = {(t.action, t.source): t.label for t in flow.transitions}
    states = {name: state.label for name, state in flow.states.items()}
    return [
        {
            "at": event.at,
            "action": labels.get((event.action, event.from_status), event.action),
            "to": states.get(event.to_status, event.to_status),
            "actor": ACTORS.get(event.actor_kind, event.actor_kind),
            "reason": event.reason or "",
        }
        for event in events
    ]


def _applicant(application: Application) -> dict[str, Any]:
    user = get_session().get(User, application.applicant_user_id)
    return masked_identity(get_cipher(), user) if user else {}


def _detail(number: str, *, reason_form: ReasonForm | None = None, status: int = 200) -> Any:
    session = get_session()
    application = _find(number)
    shown = present(session, application, viewer="reviewer")
    return (
        render_template(
            "console/review_detail.html",
            a=shown,
            matter=catalogue.get_matter(session, application.matter_code),
            applicant=_applicant(application),
            form_rows=_form_rows(application, shown["form"]),
            history=_history(application, shown["history"]),
            results=[
                {**r, "tag": RESULT_TAGS.get(r["result"], "warn")}
                for r in (shown["decision"] or {}).get("results", [])
            ],
            reasons=(shown["decision"] or {}).get("reasons", []),
            assignee=_staff_names({shown["assignee_staff_id"]}).get(
                shown["assignee_staff_id"] or 0
            ),
            holds=shown["assignee_staff_id"] == current_principal().id,
            reason_form=reason_form or ReasonForm(),
        ),
        status,
    )


@blp.get("/review/<string:number>")
@console_page(REVIEWER)
def review_application(number: str) -> Any:
    return _detail(number)


@blp.get("/review/<string:number>/materials/<string:material_id>")
@console_page(REVIEWER)
def review_material(number: str, material_id: str) -> Response:
    """A material shown inline in the application page (images, PDFs)."""
    row, data = materials.read(get_session(), material_storage(), _find(number), material_id)
    response = material_download(row, data)
    # The page frames it (a PDF in an <iframe>): same origin only.
    response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'self'"
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def _act(number: str, action: Any, done: str) -> Any:
    session = get_session()
    application = _find(number)
    with keeping_writes(session):
        action(session, application)
    session.commit()
    flash(done, "success")
    return redirect(url_for("console.review_application", number=number))


@blp.post("/review/<string:number>/claim")
@console_page(REVIEWER)
def review_claim(number: str) -> Any:
    staff_id, now = current_principal().id, utcnow()
    return _act(number, lambda s, a: review.claim(s, a, staff_id=staff_id, now=now), "已认领")


@blp.post("/review/<string:number>/return")
@console_page(REVIEWER)
def review_return(number: str) -> Any:
    staff_id, now = current_principal().id, utcnow()
    reason = (request.form.get("reason") or "").strip()[:500] or None
    return _act(
        number,
        lambda s, a: review.return_to_queue(s, a, staff_id=staff_id, reason=reason, now=now),
        "已退回待办队列",
    )


@blp.post("/review/<string:number>/approve")
@console_page(REVIEWER)
def review_approve(number: str) -> Any:
    """Approve: the licence is sealed with the department's seal and put in the wallet."""
    principal, now = current_principal(), utcnow()
    actor = SealActor(kind="staff", id=principal.id, roles=principal.roles, scopes=principal.scopes)
    session = get_session()
    return _act(
        number,
        lambda s, a: review.approve(
            s, services(session), a, actor=actor, reason=None, now=now, request_id=request_id()
        ),
        "已准予许可，电子证照已加盖印章并发放",
    )


def _reasoned(number: str, decide: Any, done: str) -> Any:
    form = ReasonForm()
    if not form.validate_on_submit():
        return _detail(number, reason_form=form, status=422)
    reason = (form.reason.data or "").strip()
    return _act(number, lambda s, a: decide(s, a, reason), done)


@blp.post("/review/<string:number>/reject")
@console_page(REVIEWER)
def review_reject(number: str) -> Any:
    staff_id, now = current_principal().id, utcnow()
    return _reasoned(
        number,
        lambda s, a, reason: review.reject(s, a, staff_id=staff_id, reason=reason, now=now),
        "已作出不予许可决定",
    )


@blp.post("/review/<string:number>/request-supplement")
@console_page(REVIEWER)
def review_request_supplement(number: str) -> Any:
    staff_id, now = current_principal().id, utcnow()
    return _reasoned(
        number,
        lambda s, a, reason: review.request_supplement(
            s, a, staff_id=staff_id, reason=reason, now=now
        ),
        "已一次性告知补正，法定时限暂停计算",
    )


# --- post-approval checks -----------------------------------------------------------------


def _inspection_rows(rows: list[Inspection]) -> list[dict[str, Any]]:
    session = get_session()
    shown = []
    for inspection in rows:
        application = session.get(Application, inspection.application_id)
        shown.append(
            {
                "id": inspection.id,
                "number": application.number if application else "",
                "matter_code": application.matter_code if application else "",
                "status": INSPECTION_TEXT.get(str(inspection.status), str(inspection.status)),
                "open": str(inspection.status) in ("open", "rectifying"),
                "due_at": inspection.due_at,
                "rectify_by": inspection.rectify_by,
                "note": inspection.note,
            }
        )
    return shown


@blp.get("/review/inspections")
@console_page(REVIEWER)
def review_inspections(
    note_form: NoteForm | None = None, rectify_form: RectifyForm | None = None, status: int = 200
) -> Any:
    """My departments' 告知承诺 inspections, the earliest due first."""
    open_only = request.args.get("all") != "1"
    rows, total = inspections.queue(
        get_session(), departments_reviewed(), open_only=open_only, offset=0, limit=200
    )
    return (
        render_template(
            "console/review_inspections.html",
            items=_inspection_rows(list(rows)),
            total=total,
            open_only=open_only,
            note_form=note_form or NoteForm(),
            rectify_form=rectify_form or RectifyForm(),
        ),
        status,
    )


def _inspection(inspection_id: int) -> Inspection:
    return inspections.for_reviewer(get_session(), departments_reviewed(), inspection_id)


@blp.post("/review/inspections/<int:inspection_id>/<string:outcome>")
@console_page(REVIEWER)
def review_inspection_outcome(inspection_id: int, outcome: str) -> Any:
    session = get_session()
    inspection = _inspection(inspection_id)
    staff_id, now = current_principal().id, utcnow()
    if outcome == "rectify":
        rectify = RectifyForm()
        if not rectify.validate_on_submit():
            return review_inspections(rectify_form=rectify, status=422)
        inspections.require_rectification(
            session,
            inspection,
            staff_id=staff_id,
            note=rectify.note.data or "",
            by=rectify.by.data,
            now=now,
        )
    else:
        form = NoteForm()
        if outcome == "confirm":
            note = (form.note.data or "").strip() or None
            inspections.confirm(session, inspection, staff_id=staff_id, note=note, now=now)
        elif outcome == "revoke":
            if not form.validate_on_submit():
                return review_inspections(note_form=form, status=422)
            application = session.get(Application, inspection.application_id)
            assert application is not None
            version = catalogue.get_version(
                session, application.matter_code, application.matter_version
            )
            inspections.revoke(
                session,
                inspection,
                version.content,
                staff_id=staff_id,
                note=form.note.data or "",
                now=now,
            )
        else:
            return render_template("console/error.html", status=404, message="未知的操作"), 404
    session.commit()
    flash("核查结果已记录", "success")
    return redirect(url_for("console.review_inspections"))
