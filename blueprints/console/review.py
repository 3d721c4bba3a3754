"""The reviewer desk: the department's queue by deadline, an application's whole file (form,
materials with inline preview, rule results, history, deadlines), the decisions, and the
post-approval checks of 告知承诺 permits.

The views call the services the review API calls. Scope is the application's department,
checked with `require_scope`: another department's reviewer gets a 403 page, which tells a
member of staff plainly why the file is closed to them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import DateField, SelectField, SelectMultipleField, TextAreaField, widgets
from wtforms.validators import DataRequired, Length, Optional

from app.applications import inspections, review
from app.applications.models import Application, ApplicationEvent, Inspection
from app.applications.signing import answers_table
from app.applications.workflow import Workflow, load_all
from app.calendar import local_day, working_days_between
from app.db import get_session, utcnow
from app.enterprises.models import RegistryEnterprise
from app.identity.models import StaffAccount, StaffRole, User
from app.identity.realname import masked_identity
from app.identity.staff import list_staff
from app.materials import service as materials
from app.matters import catalogue
from app.matters.models import MatterVersion
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
from blueprints.authz import current_principal, require_scope
from blueprints.console import blp
from blueprints.console.access import console_page
from blueprints.console.rendering import beijing
from blueprints.logins import keeping_writes

RESULT_TAGS = {Tri.PASS.value: "ok", Tri.FAIL.value: "danger", Tri.UNKNOWN.value: "warn"}
INSPECTION_TEXT = {
    "open": "待核查",
    "rectifying": "整改中",
    "confirmed": "属实",
    "revoked": "已撤销",
}
CLOCK_TEXT = {"running": "计时中", "paused": "暂停计时（等待申请人补正）", "none": "不计时"}
ACTORS = {"applicant": "申请人", "reviewer": "审查人员", "system": "系统"}
# The queue's filters: the API's `mine`, and unclaimed (accepted, nobody holds it yet).
QUEUE_VIEWS = {"all": "本部门全部", "unclaimed": "未认领", "mine": "我认领的"}


# --- forms -----------------------------------------------------------------------------------


def _reason(label: str) -> TextAreaField:
    return TextAreaField(
        label,
        validators=[
            DataRequired("请填写理由"),
            Length(min=2, max=500, message="理由为 2 至 500 字"),
        ],
    )


class DeskForm(FlaskForm):
    class Meta:
        # `check_csrf` already checks the session token on every unsafe console request; the
        # forms carry a prefix (several on one page), which would rename WTForms' own field.
        csrf = False


class RejectForm(DeskForm):
    reason = _reason("不予许可理由（将告知申请人）")


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class SupplementForm(DeskForm):
    materials = MultiCheckboxField("需补正的材料", choices=[], validate_choice=True)
    reason = _reason("补正内容（一次性告知全部需补正的内容）")


class ReturnForm(DeskForm):
    reason = TextAreaField("退回说明（可不填）", validators=[Optional(), Length(max=500)])


class TransferForm(DeskForm):
    to_staff_id = SelectField("转交给", coerce=int, validators=[DataRequired("请选择审查人员")])
    reason = TextAreaField("转交说明（可不填）", validators=[Optional(), Length(max=500)])


class NoteForm(DeskForm):
    note = TextAreaField(
        "核查意见",
        validators=[Optional(), Length(min=2, max=500, message="核查意见为 2 至 500 字")],
    )


class RectifyForm(DeskForm):
    note = TextAreaField(
        "整改要求",
        validators=[
            DataRequired("请填写整改要求"),
            Length(min=2, max=500, message="整改要求为 2 至 500 字"),
        ],
    )
    by = DateField("整改期限", validators=[DataRequired("请选择整改期限")])


# --- look-ups --------------------------------------------------------------------------------


def _find(number: str) -> Application:
    """The application, if the caller reviews for its department (403 otherwise)."""
    application = review.for_reviewer(get_session(), None, number)
    require_scope([REVIEWER], application.department_id)
    return application


def _version(session: Session, application: Application) -> MatterVersion:
    return catalogue.get_version(session, application.matter_code, application.matter_version)


def _flow(application: Application) -> Workflow:
    return load_all()[(application.workflow, application.workflow_version)]


def _staff_names(ids: Iterable[int | None]) -> dict[int, str]:
    session = get_session()
    names = {}
    for staff_id in set(ids):
        if staff_id:
            account = session.get(StaffAccount, staff_id)
            names[staff_id] = account.display_name if account else f"#{staff_id}"
    return names


def _days_left(due: dt.datetime | None, now: dt.datetime) -> tuple[str, bool]:
    """The working days left before `due` after today, and whether it has passed. `due` is the
    midnight that ends its last day."""
    if due is None:
        return "暂停计时", False
    if due <= now:
        return "已超期", True
    last, today = local_day(due - dt.timedelta(microseconds=1)), local_day(now)
    if last <= today:
        return "今日到期", False
    # The days after today, as the limit itself was counted from the day after submission.
    return f"剩余 {working_days_between(today + dt.timedelta(days=1), last)} 个工作日", False


def _promised(shown: Mapping[str, Any]) -> str:
    """The department's promise; a promise of 0 working days (即办) is due at submission."""
    due = shown["promised_due"]
    if due is None:
        return "暂停计时"
    text = beijing(due)
    return f"{text}（即办）" if due == shown["submitted_at"] else text


# --- the queue -------------------------------------------------------------------------------


@blp.get("/review")
@console_page(REVIEWER)
def review_queue() -> str:
    """My departments' open applications, the nearest statutory deadline first."""
    session = get_session()
    view = request.args.get("view", "all")
    if view not in QUEUE_VIEWS:
        view = "all"
    rows, total = review.queue(
        session,
        departments_reviewed(),
        **({"statuses": ["accepted"]} if view == "unclaimed" else {}),
        assignee_id=current_principal().id if view == "mine" else None,
        offset=0,
        limit=200,
    )
    shown = [present(session, a, viewer="reviewer") for a in rows]
    names = _staff_names(a["assignee_staff_id"] for a in shown)
    matters = {
        code: catalogue.get_matter(session, code).name for code in {a.matter_code for a in rows}
    }
    now = utcnow()
    items = []
    for a in shown:
        left, passed = _days_left(a["statutory_due"], now)
        items.append(
            {
                "number": a["number"],
                "matter": matters[a["matter_code"]],
                "status": a["status"],
                "status_label": a["status_label"],
                "overdue": a["overdue"] or passed,
                "left": left,
                "submitted_at": a["submitted_at"],
                "statutory_due": a["statutory_due"],
                "promised": _promised(a),
                "assignee": names.get(a["assignee_staff_id"] or 0),
                "can_claim": "claim" in a["actions"],
            }
        )
    return render_template(
        "console/review_queue.html",
        items=items,
        total=total,
        view=view,
        views=[
            {"key": key, "label": label, "url": url_for("console.review_queue", view=key)}
            for key, label in QUEUE_VIEWS.items()
        ],
    )


# --- one application -------------------------------------------------------------------------


def _rule_rows(decision: Mapping[str, Any] | None, titles: Mapping[str, str]) -> list[Any]:
    rows = []
    for r in (decision or {}).get("results", []):
        outcome = Tri(r["result"])
        rows.append(
            {
                "id": r["id"],
                "message": r["message"],
                "basis": r["basis"],
                "explanation": r["explanation"],
                "tag": RESULT_TAGS[outcome.value],
                "outcome": f"{outcome.mark} {outcome.label}",
                "inputs": [
                    (titles.get(key, key), _shown(value))
                    for key, value in (r.get("inputs") or {}).items()
                ],
            }
        )
    return rows


def _input_titles(version: MatterVersion) -> dict[str, str]:
    """What each fact a rule reads is called: the rule set's vocabulary, the form's titles."""
    properties = version.content["form"].get("properties", {})
    titles = {f"form.{k}": spec.get("title", k) for k, spec in properties.items()}
    rule_set = catalogue.rule_set_of(version)
    if rule_set is not None:
        vocabulary = rule_set.vocabulary
        for name, spec in {**vocabulary.fields, **vocabulary.parameters}.items():
            titles.setdefault(name, spec.label + (f"（{spec.unit}）" if spec.unit else ""))
    titles.setdefault("today", "申请当日")
    return titles


def _shown(value: Any) -> str:
    if value is None:
        return "未知"
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


def _history(application: Application, events: list[ApplicationEvent]) -> list[dict[str, Any]]:
    """Each transition in the workflow's own words: what was done, by whom, when, why."""
    flow = _flow(application)
    labels = {(t.action, t.source): t.label for t in flow.transitions}
    names = _staff_names(e.actor_id for e in events if e.actor_kind == "reviewer")
    return [
        {
            "at": event.at,
            "action": labels.get((event.action, event.from_status), event.action),
            "to": flow.states[event.to_status].label
            if event.to_status in flow.states
            else event.to_status,
            "actor": ACTORS.get(event.actor_kind, event.actor_kind)
            + (f"（{names[event.actor_id]}）" if event.actor_id in names else ""),
            "reason": event.reason or "",
        }
        for event in events
    ]


def _applicant(application: Application) -> dict[str, Any]:
    session = get_session()
    user = session.get(User, application.applicant_user_id)
    shown = masked_identity(get_cipher(), user) if user else {}
    enterprise = (
        session.get(RegistryEnterprise, application.enterprise_id)
        if application.enterprise_id
        else None
    )
    return {
        "person": f"{shown.get('name') or '未实名'}（{shown.get('id_number') or '—'}）",
        "enterprise": enterprise.name if enterprise else None,
    }


def _transfer_choices(application: Application) -> list[tuple[int, str]]:
    """The department's other active reviewers (the service checks the target again)."""
    accounts, _ = list_staff(
        get_session(),
        department_id=application.department_id,
        role=StaffRole.REVIEWER,
        active=True,
        limit=100,
    )
    me = current_principal().id
    return [(a.id, a.display_name) for a in accounts if a.id != me]


def _forms(
    application: Application, version: MatterVersion, given: Mapping[str, FlaskForm]
) -> dict[str, Any]:
    """The action forms: the one just submitted keeps its input and errors, the others start
    empty (each has its own prefix, so the page's field ids are unique)."""

    def blank(name: str, cls: type[FlaskForm]) -> Any:
        return given.get(name) or cls(formdata=None, prefix=name)

    forms = {
        "reject": blank("reject", RejectForm),
        "supplement": blank("supplement", SupplementForm),
        "return": blank("return", ReturnForm),
        "transfer": blank("transfer", TransferForm),
    }
    forms["supplement"].materials.choices = _material_choices(version)
    forms["transfer"].to_staff_id.choices = _transfer_choices(application)
    return forms


def _previews(number: str, attached: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each material with how the page shows it: an <img>, a PDF frame, a wallet licence."""
    shown = []
    for m in attached:
        kind = m["content_type"] or ""
        shown.append(
            {
                "name": m["name"],
                "src": url_for(
                    "console.review_material", number=number, material_id=m["material_id"]
                ),
                "preview": "licence"
                if m["source"] == "licence"
                else "image"
                if kind.startswith("image/")
                else "pdf"
                if kind == "application/pdf"
                else "link",
            }
        )
    return shown


def _material_choices(version: MatterVersion) -> list[tuple[str, str]]:
    return [(m["id"], m["name"]) for m in version.content["guide"]["materials"]]


def _detail(number: str, *, given: Mapping[str, FlaskForm] | None = None, status: int = 200) -> Any:
    session = get_session()
    application = _find(number)
    version = _version(session, application)
    shown = present(session, application, viewer="reviewer")
    titles = _input_titles(version)
    now = utcnow()
    left, passed = _days_left(shown["statutory_due"], now)
    decision = shown["decision"] or {}
    holds = shown["assignee_staff_id"] == current_principal().id
    actions = set(shown["actions"]) if holds or not shown["assignee_staff_id"] else set()
    response = render_template(
        "console/review_detail.html",
        a=shown,
        matter=catalogue.get_matter(session, application.matter_code),
        applicant=_applicant(application),
        form_rows=answers_table(version.content["form"], shown["form"])[1:],
        history=_history(application, shown["history"]),
        results=_rule_rows(decision, titles),
        reasons=decision.get("reasons", []),
        unavailable=decision.get("unavailable", []),
        overdue=shown["overdue"] or passed,
        promised=_promised(shown),
        materials=_previews(application.number, shown["materials"]),
        left=left if shown["decided_at"] is None else "已办结",
        clock=CLOCK_TEXT.get(_flow(application).states[application.status].clock, ""),
        assignee=_staff_names([shown["assignee_staff_id"]]).get(shown["assignee_staff_id"] or 0),
        holds=holds,
        actions=actions,
        forms=_forms(application, version, given or {}),
        verify_url=url_for("seals_public.verify_page", code=shown["licence"]["document_code"])
        if shown["licence"] and shown["licence"]["document_code"]
        else None,
    )
    return response, status


@blp.get("/review/<string:number>")
@console_page(REVIEWER)
def review_application(number: str) -> Any:
    return _detail(number)


@blp.get("/review/<string:number>/materials/<string:material_id>")
@console_page(REVIEWER)
def review_material(number: str, material_id: str) -> Response:
    """A material shown inline in the application page (images, PDFs), scoped as the API's."""
    row, data = materials.read(get_session(), material_storage(), _find(number), material_id)
    response = material_download(row, data)
    # The application page frames it (a PDF in an <iframe>): this origin only, nothing runs.
    response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'self'"
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def _act(number: str, action: Callable[[Session, Application], Any], done: str) -> Any:
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
    form = ReturnForm(prefix="return")
    if not form.validate_on_submit():
        return _detail(number, given={"return": form}, status=422)
    staff_id, now = current_principal().id, utcnow()
    reason = (form.reason.data or "").strip() or None
    return _act(
        number,
        lambda s, a: review.return_to_queue(s, a, staff_id=staff_id, reason=reason, now=now),
        "已退回待办队列",
    )


@blp.post("/review/<string:number>/transfer")
@console_page(REVIEWER)
def review_transfer(number: str) -> Any:
    form = TransferForm(prefix="transfer")
    form.to_staff_id.choices = _transfer_choices(_find(number))
    if not form.validate_on_submit():
        return _detail(number, given={"transfer": form}, status=422)
    staff_id, now = current_principal().id, utcnow()
    target = int(form.to_staff_id.data)
    reason = (form.reason.data or "").strip() or None
    return _act(
        number,
        lambda s, a: review.transfer(
            s, a, staff_id=staff_id, to_staff_id=target, reason=reason, now=now
        ),
        "已转交",
    )


@blp.post("/review/<string:number>/approve")
@console_page(REVIEWER)
def review_approve(number: str) -> Any:
    """Approve: the service seals the licence with the department's seal, into the wallet."""
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


@blp.post("/review/<string:number>/reject")
@console_page(REVIEWER)
def review_reject(number: str) -> Any:
    form = RejectForm(prefix="reject")
    if not form.validate_on_submit():
        return _detail(number, given={"reject": form}, status=422)
    staff_id, now, reason = current_principal().id, utcnow(), (form.reason.data or "").strip()
    return _act(
        number,
        lambda s, a: review.reject(s, a, staff_id=staff_id, reason=reason, now=now),
        "已作出不予许可决定",
    )


def supplement_text(names: list[str], reason: str) -> str:
    """The one notice (一次性告知) the applicant reads: the materials named, then the reason."""
    if not names:
        return reason
    return f"请补正以下材料：{'、'.join(names)}。{reason}"


@blp.post("/review/<string:number>/request-supplement")
@console_page(REVIEWER)
def review_request_supplement(number: str) -> Any:
    session = get_session()
    form = SupplementForm(prefix="supplement")
    choices = _material_choices(_version(session, _find(number)))
    form.materials.choices = choices
    if not form.validate_on_submit():
        return _detail(number, given={"supplement": form}, status=422)
    picked = set(form.materials.data or [])
    reason = supplement_text(
        [name for key, name in choices if key in picked], (form.reason.data or "").strip()
    )
    if len(reason) > 500:
        form.reason.errors = ["连同所列材料不超过 500 字"]
        return _detail(number, given={"supplement": form}, status=422)
    staff_id, now = current_principal().id, utcnow()
    return _act(
        number,
        lambda s, a: review.request_supplement(s, a, staff_id=staff_id, reason=reason, now=now),
        "已一次性告知补正，法定时限暂停计算",
    )


# --- post-approval checks -----------------------------------------------------------------


def _inspection_rows(
    rows: list[Inspection], failed: int | None, given: Mapping[str, FlaskForm]
) -> list[dict[str, Any]]:
    session = get_session()
    shown = []
    for inspection in rows:
        application = session.get(Application, inspection.application_id)
        assert application is not None  # a foreign key
        mine = given if inspection.id == failed else {}
        shown.append(
            {
                "id": inspection.id,
                "number": application.number,
                "url": url_for("console.review_application", number=application.number),
                "matter": catalogue.get_matter(session, application.matter_code).name,
                "status": INSPECTION_TEXT.get(str(inspection.status), str(inspection.status)),
                "can_confirm": str(inspection.status) in ("open", "rectifying"),
                "can_rectify": str(inspection.status) == "open",
                "due_at": inspection.due_at,
                "rectify_by": inspection.rectify_by,
                "overdue": inspection.overdue and str(inspection.status) in ("open", "rectifying"),
                "note": inspection.note,
                "closed_at": inspection.closed_at,
                # Each task has its own forms; only the one just submitted shows its errors.
                "note_form": mine.get("note") or NoteForm(formdata=None),
                "rectify_form": mine.get("rectify") or RectifyForm(formdata=None),
            }
        )
    return shown


def _inspections_page(
    failed: int | None = None, given: Mapping[str, FlaskForm] | None = None, status: int = 200
) -> Any:
    open_only = request.args.get("all") != "1"
    rows, total = inspections.queue(
        get_session(), departments_reviewed(), open_only=open_only, offset=0, limit=200
    )
    return (
        render_template(
            "console/review_inspections.html",
            items=_inspection_rows(list(rows), failed, given or {}),
            total=total,
            open_only=open_only,
        ),
        status,
    )


@blp.get("/review/inspections")
@console_page(REVIEWER)
def review_inspections() -> Any:
    """My departments' 告知承诺 inspections, the earliest due first."""
    return _inspections_page()


def _inspection(inspection_id: int) -> Inspection:
    inspection = inspections.for_reviewer(get_session(), None, inspection_id)
    require_scope([REVIEWER], inspection.department_id)
    return inspection


@blp.post("/review/inspections/<int:inspection_id>/rectify")
@console_page(REVIEWER)
def review_inspection_rectify(inspection_id: int) -> Any:
    session, inspection = get_session(), _inspection(inspection_id)
    form = RectifyForm()
    if not form.validate_on_submit():
        return _inspections_page(inspection_id, {"rectify": form}, 422)
    inspections.require_rectification(
        session,
        inspection,
        staff_id=current_principal().id,
        note=(form.note.data or "").strip(),
        by=form.by.data,
        now=utcnow(),
    )
    session.commit()
    flash("已责令限期整改", "success")
    return redirect(url_for("console.review_inspections"))


@blp.post("/review/inspections/<int:inspection_id>/confirm")
@console_page(REVIEWER)
def review_inspection_confirm(inspection_id: int) -> Any:
    session, inspection = get_session(), _inspection(inspection_id)
    form = NoteForm()
    if not form.validate_on_submit():
        return _inspections_page(inspection_id, {"note": form}, 422)
    inspections.confirm(
        session,
        inspection,
        staff_id=current_principal().id,
        note=(form.note.data or "").strip() or None,
        now=utcnow(),
    )
    session.commit()
    flash("已记录：核查属实", "success")
    return redirect(url_for("console.review_inspections"))


@blp.post("/review/inspections/<int:inspection_id>/revoke")
@console_page(REVIEWER)
def review_inspection_revoke(inspection_id: int) -> Any:
    session, inspection = get_session(), _inspection(inspection_id)
    form = NoteForm()
    valid = form.validate_on_submit()
    if valid and not (form.note.data or "").strip():
        # Revoking needs its grounds on record (the API requires the note here).
        form.note.errors = ["撤销许可须填写核查意见"]
        valid = False
    if not valid:
        return _inspections_page(inspection_id, {"note": form}, 422)
    application = session.get(Application, inspection.application_id)
    assert application is not None  # a foreign key
    inspections.revoke(
        session,
        inspection,
        _version(session, application).content,
        staff_id=current_principal().id,
        note=(form.note.data or "").strip(),
        now=utcnow(),
    )
    session.commit()
    flash("承诺不实：许可已撤销，申请人已记入失信惩戒", "success")
    return redirect(url_for("console.review_inspections"))
