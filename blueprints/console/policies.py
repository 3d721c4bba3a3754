"""The policy desk: a department's policies, a policy's form with its criteria built from
pickers (industries, towns, size classes, tags, numeric ranges), a live preview of who it
reaches, publish and withdraw, reach statistics with a chart, and 免申即享 beneficiary lists.

The form's criteria go through `criteria.from_structured`, the API's `criteria_form` path, so
the same contradictions are refused with the same messages; each is shown beside its field.
"""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    URLField,
    widgets,
)
from wtforms.validators import URL, DataRequired, Length, NumberRange, Optional

from app.db import get_session, utcnow
from app.errors import ValidationFailed
from app.organisation.models import Department
from app.policies import criteria as crit
from app.policies import jobs, matching, reference, service
from app.policies.errors import InvalidCriteria
from app.policies.models import BenefitKind, Delivery, Policy
from blueprints.authz import ADMIN_ROLE, current_principal, require_scope
from blueprints.console import blp
from blueprints.console.access import console_page
from blueprints.console.charts import horizontal_bars

OFFICER = "policy_officer"
STATUS_TEXT = {"draft": "草稿", "published": "已发布", "expired": "已过期", "withdrawn": "已撤回"}
KIND_TEXT = {
    "subsidy": "资金补贴",
    "tax": "税费减免",
    "loan": "贷款贴息",
    "insurance": "保险保费支持",
    "award": "认定奖励",
    "service": "服务支持",
}
REACH_TEXT = (
    ("matched", "匹配企业"),
    ("eligible", "确定符合"),
    ("pushed", "已推送"),
    ("delivered", "已送达"),
    ("read", "已阅读"),
    ("applied", "已申报"),
)


class CheckboxesField(SelectMultipleField):
    """A list of checkboxes (towns, sizes, tags): easier on a counter PC than a multi-select."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def _choices(pairs: Any) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


def _industry_choices() -> list[SelectChoice]:
    """Every division of GB/T 4754-2017 as "C13 农副食品加工业", under its section letter."""
    choices = []
    for division, name in sorted(reference.DIVISIONS.items()):
        section = reference.section_of_division(division) or ""
        choices.append(SelectChoice(f"{section}{division}", f"{section}{division} {name}"))
    return choices


class PolicyForm(FlaskForm):
    title = StringField("政策名称", validators=[DataRequired("请填写政策名称"), Length(max=128)])
    doc_number = StringField("文号", validators=[DataRequired("请填写文号"), Length(max=64)])
    summary = TextAreaField("政策摘要", validators=[DataRequired("请填写摘要"), Length(max=4000)])
    source_url = URLField(
        "原文链接", validators=[Optional(), URL(message="请填写有效的网址"), Length(max=512)]
    )
    benefit_kind = SelectField("扶持方式", choices=_choices(KIND_TEXT.items()))
    benefit_amount_yuan = IntegerField(
        "扶持金额（元）", validators=[Optional(), NumberRange(min=0, message="金额不能为负")]
    )
    delivery = SelectField(
        "兑现方式", choices=_choices((d.value, d.label) for d in Delivery), default="application"
    )
    item_code = StringField(
        "兑现事项编码（申请兑现时必填）", validators=[Optional(), Length(max=64)]
    )
    expires_on = DateField("有效期至", validators=[Optional()])
    article = StringField("依据条款", validators=[Optional(), Length(max=64)])
    industry_include = SelectMultipleField("适用行业（可多选）", choices=_industry_choices())
    size_classes = CheckboxesField(
        "企业规模", choices=_choices((s.value, s.label) for s in reference.SizeClass)
    )
    towns = CheckboxesField("注册镇街", choices=_choices((t, t) for t in reference.TOWNS))
    tags_all = CheckboxesField("须具备的资质", choices=_choices((t, t) for t in reference.TAGS))
    employees_min = IntegerField("从业人数不少于", validators=[Optional(), NumberRange(min=0)])
    employees_max = IntegerField("从业人数不多于", validators=[Optional(), NumberRange(min=0)])
    revenue_min_yuan = IntegerField(
        "营业收入不少于（元）", validators=[Optional(), NumberRange(min=0)]
    )
    revenue_max_yuan = IntegerField(
        "营业收入不多于（元）", validators=[Optional(), NumberRange(min=0)]
    )
    established_after = DateField("成立日期不早于", validators=[Optional()])
    established_before = DateField("成立日期不晚于", validators=[Optional()])

    CRITERIA_FIELDS = (
        "industry_include",
        "size_classes",
        "towns",
        "tags_all",
        "employees_min",
        "employees_max",
        "revenue_min_yuan",
        "revenue_max_yuan",
        "established_after",
        "established_before",
        "article",
    )

    def criteria_form(self) -> dict[str, Any]:
        """The API's `criteria_form` from the fields filled in (empty ones say nothing)."""
        values: dict[str, Any] = {}
        for name in self.CRITERIA_FIELDS:
            value = getattr(self, name).data
            if value in (None, "", []):
                continue
            values[name] = value.isoformat() if hasattr(value, "isoformat") else value
        return values

    def policy_fields(self) -> dict[str, Any]:
        return {
            "title": (self.title.data or "").strip(),
            "doc_number": (self.doc_number.data or "").strip(),
            "summary": (self.summary.data or "").strip(),
            "source_url": self.source_url.data or None,
            "benefit_kind": self.benefit_kind.data,
            "benefit_amount_yuan": self.benefit_amount_yuan.data,
            "delivery": self.delivery.data,
            "item_code": (self.item_code.data or "").strip() or None,
            "expires_on": self.expires_on.data,
        }

    def criteria(self) -> list[crit.Criterion] | None:
        """The criteria, or None with the reason put beside its field."""
        try:
            return crit.from_structured(
                self.criteria_form(), doc=(self.doc_number.data or "").strip() or "—"
            )
        except InvalidCriteria as refused:
            path = str(refused.details.get("field", ""))
            name = path.removeprefix("criteria_form.").split("[")[0]
            field = getattr(self, name, None) if name in self.CRITERIA_FIELDS else None
            reason = str(refused.details.get("reason", refused.message))
            if field is None:
                field = self.industry_include
            field.errors = [*field.errors, reason]
            return None

    def refused_by_service(self, refused: ValidationFailed) -> None:
        """Put a refusal of the policy service beside the field it names (or the title)."""
        name = str(refused.details.get("field", "")).split(".")[0]
        field = self._fields.get(name) or self.title
        field.errors = [*field.errors, refused.message]


class WithdrawForm(FlaskForm):
    reason = StringField("撤回原因", validators=[DataRequired("请填写撤回原因"), Length(max=255)])


def _departments() -> list[Department]:
    """The departments whose policies the signed-in officer manages."""
    principal = current_principal()
    session = get_session()
    scoped = principal.scopes.get(OFFICER)
    if principal.has_role(ADMIN_ROLE) or scoped is None:
        return list(session.query(Department).order_by(Department.id))
    return [d for d in (session.get(Department, i) for i in scoped) if d is not None]


def _department_id() -> int:
    departments = _departments()
    wanted = request.values.get("department_id", type=int)
    chosen = wanted if wanted else (departments[0].id if departments else 0)
    require_scope([OFFICER], chosen)
    return chosen


def _policy(policy_id: int) -> Policy:
    policy = service.get_policy(get_session(), policy_id)
    require_scope([OFFICER], policy.department_id)
    return policy


def _status(policy: Policy) -> str:
    return service.effective_status(policy, utcnow()).value


@blp.get("/policies")
@console_page(OFFICER)
def policy_list() -> str:
    department_id = _department_id()
    policies = service.department_policies(get_session(), department_id)
    rows = [
        {
            "id": p.id,
            "title": p.title,
            "doc_number": p.doc_number,
            "status": _status(p),
            "status_text": STATUS_TEXT[_status(p)],
            "delivery": Delivery(p.delivery).label,
            "published_at": p.published_at,
        }
        for p in policies
    ]
    return render_template(
        "console/policy_list.html",
        rows=rows,
        departments=_departments(),
        department_id=department_id,
    )


def _form_page(
    form: PolicyForm, policy: Policy | None, department_id: int, status: int = 200
) -> Any:
    return (
        render_template(
            "console/policy_form.html",
            form=form,
            policy=policy,
            department_id=department_id,
            department=get_session().get(Department, department_id),
        ),
        status,
    )


@blp.route("/policies/new", methods=["GET", "POST"])
@console_page(OFFICER)
def policy_new() -> Any:
    department_id = _department_id()
    form = PolicyForm()
    if request.method == "GET":
        return _form_page(form, None, department_id)
    criteria = form.criteria() if form.validate_on_submit() else None
    if criteria is None:
        return _form_page(form, None, department_id, 422)
    session = get_session()
    try:
        policy = service.create_policy(
            session,
            department_id=department_id,
            fields=form.policy_fields(),
            criteria=criteria,
            staff_id=current_principal().id,
            now=utcnow(),
        )
    except ValidationFailed as refused:
        session.rollback()
        form.refused_by_service(refused)
        return _form_page(form, None, department_id, 422)
    session.commit()
    flash("草稿已保存", "success")
    return redirect(url_for("console.policy_detail", policy_id=policy.id))


def _form_from(policy: Policy) -> PolicyForm:
    """The edit form filled from the policy and its current criteria's structured form."""
    form = PolicyForm(obj=policy)
    form.benefit_kind.data = BenefitKind(policy.benefit_kind).value
    form.delivery.data = Delivery(policy.delivery).value
    return form


@blp.route("/policies/<int:policy_id>/edit", methods=["GET", "POST"])
@console_page(OFFICER)
def policy_edit(policy_id: int) -> Any:
    policy = _policy(policy_id)
    if request.method == "GET":
        return _form_page(_form_from(policy), policy, policy.department_id)
    form = PolicyForm()
    if not form.validate_on_submit():
        return _form_page(form, policy, policy.department_id, 422)
    # Criteria left blank keep the current ones; any filled in replace them as a new version.
    criteria = None
    if set(form.criteria_form()) - {"article"}:
        criteria = form.criteria()
        if criteria is None:
            return _form_page(form, policy, policy.department_id, 422)
    session = get_session()
    try:
        service.edit_policy(
            session,
            policy,
            fields=form.policy_fields(),
            criteria=criteria,
            staff_id=current_principal().id,
            now=utcnow(),
        )
    except ValidationFailed as refused:
        session.rollback()
        form.refused_by_service(refused)
        return _form_page(form, policy, policy.department_id, 422)
    session.commit()
    jobs.kick()
    flash("已保存；新的适用条件作为新版本生效", "success")
    return redirect(url_for("console.policy_detail", policy_id=policy.id))


def _preview_rows(criteria: list[crit.Criterion], preview: matching.Preview) -> dict[str, Any]:
    labels = {c.id: c.label for c in criteria}
    return {
        "eligible": preview.eligible,
        "maybe": preview.maybe,
        "near_misses": [
            {"label": labels.get(cid, cid), "count": count}
            for cid, count in preview.near_misses.items()
        ],
    }


@blp.post("/policies/preview")
@console_page(OFFICER)
def policy_preview() -> str:
    """The live preview of the form being edited (htmx): nothing is saved."""
    form = PolicyForm()
    criteria = form.criteria()
    if criteria is None:
        errors = [e for name in PolicyForm.CRITERIA_FIELDS for e in getattr(form, name).errors]
        return render_template("console/policy_preview.html", errors=errors, preview=None)
    preview = matching.preview(get_session(), criteria)
    return render_template(
        "console/policy_preview.html", errors=[], preview=_preview_rows(criteria, preview)
    )


@blp.get("/policies/<int:policy_id>")
@console_page(OFFICER)
def policy_detail(policy_id: int, withdraw_form: WithdrawForm | None = None) -> Any:
    policy = _policy(policy_id)
    session = get_session()
    criteria = service.current_criteria(session, policy)
    status = _status(policy)
    reach = service.reach(session, policy.id)
    preview = (
        _preview_rows(criteria, matching.preview(session, criteria))
        if status == "draft" and criteria
        else None
    )
    return render_template(
        "console/policy_detail.html",
        policy=policy,
        status=status,
        status_text=STATUS_TEXT[status],
        kind=KIND_TEXT.get(BenefitKind(policy.benefit_kind).value, ""),
        delivery=Delivery(policy.delivery),
        automatic=Delivery(policy.delivery) is Delivery.AUTOMATIC,
        criteria=criteria,
        preview=preview,
        reach=reach,
        chart=horizontal_bars(
            "政策触达（企业数）", [(label, reach.get(key, 0)) for key, label in REACH_TEXT]
        ),
        withdraw_form=withdraw_form or WithdrawForm(),
    )


@blp.post("/policies/<int:policy_id>/publish")
@console_page(OFFICER)
def policy_publish(policy_id: int) -> Any:
    policy = _policy(policy_id)
    session = get_session()
    matched = service.publish(session, policy, staff_id=current_principal().id, now=utcnow())
    session.commit()
    jobs.kick()
    flash(f"已发布：匹配 {matched} 家企业，推送正在发送", "success")
    return redirect(url_for("console.policy_detail", policy_id=policy.id))


@blp.post("/policies/<int:policy_id>/withdraw")
@console_page(OFFICER)
def policy_withdraw(policy_id: int) -> Any:
    policy = _policy(policy_id)
    form = WithdrawForm()
    if not form.validate_on_submit():
        return policy_detail(policy_id, withdraw_form=form), 422
    session = get_session()
    service.withdraw(
        session,
        policy,
        reason=(form.reason.data or "").strip(),
        staff_id=current_principal().id,
        now=utcnow(),
    )
    session.commit()
    flash("已撤回；尚未发送的推送已取消", "success")
    return redirect(url_for("console.policy_detail", policy_id=policy.id))


@blp.get("/policies/<int:policy_id>/beneficiaries.csv")
@console_page(OFFICER)
def policy_beneficiaries(policy_id: int) -> Response:
    """The 免申即享 beneficiary list, as the API gives it (accounts masked)."""
    policy = _policy(policy_id)
    body = "\ufeff" + service.beneficiaries_csv(get_session(), policy)
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=policy-{policy.id}.csv"},
    )
