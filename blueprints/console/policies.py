"""The policy desk: a department's policies, a policy's form with its criteria built from
pickers (industries, towns, size classes, tags) and numeric conditions (a field, an operator,
a value), a live preview of who it reaches, publish and withdraw, reach statistics with a
chart, and 免申即享 beneficiary lists.

The pickers go through `criteria.from_structured` (the API's `criteria_form`), the numeric
conditions are expressions of the criteria language built here; the whole list is then checked
by `criteria.parse_criteria`, the validator of the API's `criteria` body. A refusal names the
field at fault, and the form shows it beside that field.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    URLField,
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
from blueprints.console.charts import BarChart, horizontal_bars
from blueprints.console.forms import CheckboxesField, choices, show_beside

OFFICER = "policy_officer"
STATUS_TEXT = {"draft": "草稿", "published": "已发布", "expired": "已过期", "withdrawn": "已撤回"}
STATUS_TAG = {"draft": "warn", "published": "ok", "expired": "", "withdrawn": "danger"}
KIND_TEXT = {
    "subsidy": "资金补贴",
    "tax": "税费减免",
    "loan": "贷款贴息",
    "insurance": "保险保费支持",
    "award": "认定奖励",
    "service": "服务支持",
}
# What the stats service counts, in the order of the funnel, with the words officers use.
REACH_TEXT = (
    ("matched", "匹配企业"),
    ("eligible", "确定符合"),
    ("pushed", "已推送"),
    ("delivered", "已送达"),
    ("read", "已阅读"),
    ("applied", "已申报"),
)
REACH_OTHER_TEXT = (
    ("waiting", "待发送"),
    ("skipped", "未订阅，未推送"),
    ("failed", "发送失败"),
    ("in_doubt", "结果待确认"),
)
# The numeric conditions: fields of the criteria language that are ordered.
NUMERIC_FIELDS = (
    ("employees", "从业人数（人）"),
    ("revenue_yuan", "年营业收入（元）"),
    ("established_on", "成立日期（YYYY-MM-DD）"),
)
OPERATORS = (
    (">=", "≥ 不少于"),
    ("<=", "≤ 不多于"),
    (">", "> 多于"),
    ("<", "< 少于"),
    ("==", "= 等于"),
    ("!=", "≠ 不等于"),
)
OPERATOR_SYMBOL = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "==": "=", "!=": "≠"}
CONDITION_ROWS = 3
# The pickers, as the API's structured criteria form names them.
PICKERS = ("industry_include", "size_classes", "towns", "tags_all")


def _industry_choices() -> list[SelectChoice]:
    """GB/T 4754-2017 by section: the whole section, then each of its divisions (大类)."""
    options: list[SelectChoice] = []
    for letter, (name, first, last) in reference.SECTIONS.items():
        group = f"{letter} {name}"
        options.append(SelectChoice(letter, f"{letter} {name}（整个门类）", optgroup=group))
        for number in range(first, last + 1):
            division = f"{number:02d}"
            if division in reference.DIVISIONS:
                label = f"{letter}{division} {reference.DIVISIONS[division]}"
                options.append(SelectChoice(f"{letter}{division}", label, optgroup=group))
    return options


class ConditionForm(Form):
    """One numeric condition: field, operator, value (a row of the policy form)."""

    field = SelectField("字段", choices=choices([("", "（不使用）"), *NUMERIC_FIELDS]), default="")
    operator = SelectField("比较", choices=choices(OPERATORS), default=">=")
    value = StringField("取值", validators=[Length(max=32)])

    def expression_value(self) -> Any:
        """The value as the criteria language types it: digits are an integer; anything else
        (a date, or a typo) goes to the validator as text, which says what is wrong."""
        text = (self.value.data or "").strip().replace(",", "").replace("，", "")
        if not text:
            return None
        return int(text) if text.isdigit() else text


class PolicyForm(FlaskForm):
    title = StringField("政策名称", validators=[DataRequired("请填写政策名称"), Length(max=128)])
    doc_number = StringField("文号", validators=[DataRequired("请填写文号"), Length(max=64)])
    summary = TextAreaField("政策摘要", validators=[DataRequired("请填写摘要"), Length(max=4000)])
    source_url = URLField(
        "原文链接", validators=[Optional(), URL(message="请填写有效的网址"), Length(max=512)]
    )
    benefit_kind = SelectField("扶持方式", choices=choices(KIND_TEXT.items()))
    benefit_amount_yuan = IntegerField(
        "扶持金额（元）",
        validators=[Optional(), NumberRange(min=0, message="金额不能为负")],
    )
    delivery = SelectField(
        "兑现方式（免申即享：符合条件的企业无需申请）",
        choices=choices((d.value, d.label) for d in Delivery),
        default="application",
    )
    item_code = StringField(
        "兑现事项编码（申请兑现时必填）", validators=[Optional(), Length(max=64)]
    )
    expires_on = DateField("有效期至", validators=[Optional()])
    article = StringField("依据条款", validators=[Optional(), Length(max=64)])
    industry_include = SelectMultipleField(
        "适用行业（可多选，按住 Ctrl 点选）", choices=_industry_choices()
    )
    size_classes = CheckboxesField(
        "企业规模", choices=choices((s.value, s.label) for s in reference.SizeClass)
    )
    towns = CheckboxesField("注册镇街", choices=choices((t, t) for t in reference.TOWNS))
    tags_all = CheckboxesField("须具备的资质", choices=choices((t, t) for t in reference.TAGS))
    conditions = FieldList(
        FormField(ConditionForm), min_entries=CONDITION_ROWS, max_entries=CONDITION_ROWS
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Each row's fields get their own accessible names ("条件1：字段").
        for index, entry in enumerate(self.conditions, start=1):
            for sub in entry.form:
                sub.label.text = f"条件{index}：{sub.label.text}"
        # Refusals that belong to the criteria as a whole ("至少需要一项适用条件").
        self.criteria_errors: list[str] = []

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

    def _structured(self) -> dict[str, Any]:
        """The pickers as the API's `criteria_form` (empty ones say nothing)."""
        values: dict[str, Any] = {
            name: getattr(self, name).data for name in PICKERS if getattr(self, name).data
        }
        if self.article.data and values:
            values["article"] = self.article.data.strip()
        return values

    def _numeric(self, doc: str) -> tuple[list[dict[str, Any]], list[ConditionForm]]:
        """The numeric conditions as criteria of the language, and the row each came from."""
        raw: list[dict[str, Any]] = []
        rows: list[ConditionForm] = []
        for index, entry in enumerate(self.conditions, start=1):
            row: ConditionForm = entry.form
            name = row.field.data
            if not name:
                if (row.value.data or "").strip():
                    row.field.errors = [*row.field.errors, "请选择该条件的字段"]
                continue
            value = row.expression_value()
            label = crit.FIELD_LABELS[name].split("（")[0]
            symbol = OPERATOR_SYMBOL.get(row.operator.data or "", "")
            raw.append(
                {
                    "id": f"n{index}",
                    "label": f"{label}{symbol}{'' if value is None else value}",
                    "rule": {row.operator.data: [{"var": name}, value]},
                    "source": {"doc": doc, "article": (self.article.data or "").strip()},
                }
            )
            rows.append(row)
        return raw, rows

    def has_criteria(self) -> bool:
        return bool(self._structured()) or any(e.form.field.data for e in self.conditions)

    def criteria(self) -> list[crit.Criterion] | None:
        """The criteria the form describes, checked by the API's validator; None with the
        reason put beside its field."""
        doc = (self.doc_number.data or "").strip() or "—"
        structured = self._structured()
        numeric, rows = self._numeric(doc)
        if any(row.field.errors for row in rows) or any(
            e.form.field.errors for e in self.conditions
        ):
            return None
        base: list[crit.Criterion] = []
        try:
            if structured or not numeric:
                # With nothing at all, this is where "至少需要一项适用条件" comes from.
                base = crit.from_structured(structured, doc=doc)
            return crit.parse_criteria([c.as_json() for c in base] + numeric, default_doc=doc)
        except InvalidCriteria as refused:
            self._place(refused, len(base), rows)
            return None

    def _place(self, refused: InvalidCriteria, offset: int, rows: list[ConditionForm]) -> None:
        """Put a refusal beside the field its path names."""
        path = str(refused.details.get("field", ""))
        reason = str(refused.details.get("reason", refused.message))
        if path.startswith("criteria_form."):
            name = path.removeprefix("criteria_form.").split("[")[0].split(".")[0]
            if name in PICKERS:
                field = getattr(self, name)
                field.errors = [*field.errors, reason]
                return
        if path.startswith("criteria["):
            index = int(path[len("criteria[") :].split("]")[0]) - offset
            if 0 <= index < len(rows):
                row = rows[index]
                target = row.field if "[0]" in path.split(".rule", 1)[-1] else row.value
                target.errors = [*target.errors, reason]
                return
        self.criteria_errors.append(reason)

    def fill_criteria(self, criteria: list[crit.Criterion]) -> bool:
        """Show stored criteria in the pickers and rows; False when some cannot be shown (they
        came through the API as free expressions) and the form leaves them as they are."""
        rows: list[tuple[str, str, Any]] = []
        picked: dict[str, list[str]] = {name: [] for name in PICKERS}
        for criterion in criteria:
            ((op, args),) = criterion.rule.items()
            first = args[0] if isinstance(args, list) and args else None
            var = first.get("var") if isinstance(first, dict) else None
            if op == "industry_prefix":
                picked["industry_include"] += list(args)
            elif op == "in" and var in ("size_class", "town"):
                picked["size_classes" if var == "size_class" else "towns"] += list(args[1])
            elif op == "has_tag":
                picked["tags_all"].append(args)
            elif op in OPERATOR_SYMBOL and var in dict(NUMERIC_FIELDS):
                rows.append((var, op, args[1]))
            elif op == "between" and var in dict(NUMERIC_FIELDS):
                rows += [(var, ">=", args[1]), (var, "<=", args[2])]
            else:
                return False
        if len(rows) > CONDITION_ROWS:
            return False
        for name, values in picked.items():
            getattr(self, name).data = values
        for entry, (var, op, value) in zip(self.conditions, rows, strict=False):
            entry.form.field.data, entry.form.operator.data = var, op
            entry.form.value.data = str(value)
        self.article.data = criteria[0].article if criteria else ""
        return True


class WithdrawForm(FlaskForm):
    reason = StringField("撤回原因", validators=[DataRequired("请填写撤回原因"), Length(max=255)])


# -- helpers -----------------------------------------------------------------------------------


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
    """The policy, if the officer's department owns it (as the API checks)."""
    policy = service.get_policy(get_session(), policy_id)
    require_scope([OFFICER], policy.department_id)
    return policy


def _status(policy: Policy) -> str:
    return service.effective_status(policy, utcnow()).value


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


@dataclass(frozen=True)
class Reach:
    """The stats service's figures, in the desk's words, with their chart."""

    figures: dict[str, int]
    rows: list[tuple[str, int]]
    chart: BarChart
    draining: bool  # pushes still waiting: the page refreshes the figures


def _reach(policy: Policy) -> Reach:
    figures = service.reach(get_session(), policy.id)
    funnel = [(label, figures.get(key, 0)) for key, label in REACH_TEXT]
    others = [(label, figures.get(key, 0)) for key, label in REACH_OTHER_TEXT]
    return Reach(
        figures=figures,
        rows=funnel + others,
        chart=horizontal_bars("政策触达（企业数）", funnel),
        draining=figures.get("waiting", 0) > 0,
    )


def _beneficiaries(policy: Policy) -> tuple[list[str], list[list[str]]]:
    """The 免申即享 list as the API's CSV gives it (accounts masked there): header and rows."""
    reader = csv.reader(io.StringIO(service.beneficiaries_csv(get_session(), policy)))
    header, *rows = list(reader)
    # The CSV keeps the size class's code for spreadsheets; the page shows its Chinese name.
    sizes = {s.value: s.label for s in reference.SizeClass}
    column = header.index("企业规模") if "企业规模" in header else -1
    if column >= 0:
        for row in rows:
            row[column] = sizes.get(row[column], row[column])
    return header, rows


def _list_row(policy: Policy) -> dict[str, Any]:
    status = _status(policy)
    return {
        "id": policy.id,
        "title": policy.title,
        "doc_number": policy.doc_number,
        "status": status,
        "status_text": STATUS_TEXT[status],
        "status_tag": STATUS_TAG[status],
        "delivery": Delivery(policy.delivery).label,
        "published_at": policy.published_at,
        "editable": status in ("draft", "published"),
        "has_stats": status != "draft",
    }


# -- pages -------------------------------------------------------------------------------------


@blp.get("/policies")
@console_page(OFFICER)
def policy_list() -> str:
    """The department's policies, newest first, with their status."""
    department_id = _department_id()
    policies = service.department_policies(get_session(), department_id)
    return render_template(
        "console/policy_list.html",
        rows=[_list_row(p) for p in policies],
        departments=_departments(),
        department_id=department_id,
    )


def _form_page(
    form: PolicyForm,
    policy: Policy | None,
    department_id: int,
    status: int = 200,
    *,
    keeps_criteria: bool = False,
) -> Any:
    return (
        render_template(
            "console/policy_form.html",
            form=form,
            policy=policy,
            department_id=department_id,
            department=get_session().get(Department, department_id),
            keeps_criteria=keeps_criteria,
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
    valid = form.validate_on_submit()
    criteria = form.criteria()  # also when other fields fail: every error shows at once
    if not valid or criteria is None:
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
        show_beside(form, refused, "title")
        return _form_page(form, None, department_id, 422)
    session.commit()
    flash("草稿已保存", "success")
    return redirect(url_for("console.policy_detail", policy_id=policy.id))


def _form_from(policy: Policy) -> tuple[PolicyForm, bool]:
    """The edit form filled from the policy and its current criteria (and whether some
    criteria could not be shown in it)."""
    form = PolicyForm(obj=policy)
    form.benefit_kind.data = BenefitKind(policy.benefit_kind).value
    form.delivery.data = Delivery(policy.delivery).value
    shown = form.fill_criteria(service.current_criteria(get_session(), policy))
    return form, not shown


@blp.route("/policies/<int:policy_id>/edit", methods=["GET", "POST"])
@console_page(OFFICER)
def policy_edit(policy_id: int) -> Any:
    policy = _policy(policy_id)
    session = get_session()
    if request.method == "GET":
        form, keeps = _form_from(policy)
        return _form_page(form, policy, policy.department_id, keeps_criteria=keeps)
    form = PolicyForm()
    valid = form.validate_on_submit()
    current = service.current_criteria(session, policy)
    # A form without criteria keeps the current ones (those the form cannot show, too).
    criteria = form.criteria() if form.has_criteria() or not current else current
    if not valid or criteria is None:
        return _form_page(form, policy, policy.department_id, 422)
    unchanged = [c.rule for c in criteria] == [c.rule for c in current] and [
        c.label for c in criteria
    ] == [c.label for c in current]
    try:
        service.edit_policy(
            session,
            policy,
            fields=form.policy_fields(),
            criteria=None if unchanged else criteria,
            staff_id=current_principal().id,
            now=utcnow(),
        )
    except ValidationFailed as refused:
        session.rollback()
        show_beside(form, refused, "title")
        return _form_page(form, policy, policy.department_id, 422)
    session.commit()
    jobs.kick()
    flash("已保存" if unchanged else "已保存；新的适用条件作为新版本生效", "success")
    return redirect(url_for("console.policy_detail", policy_id=policy.id))


@blp.post("/policies/preview")
@console_page(OFFICER)
def policy_preview() -> str:
    """The live preview of the form being edited (htmx): the API's preview service on the
    criteria as they stand; nothing is saved."""
    form = PolicyForm()
    if not form.has_criteria():
        return render_template("console/policy_preview.html", errors=[], preview=None)
    criteria = form.criteria()
    if criteria is None:
        errors = [*form.criteria_errors]
        for name in PICKERS:
            errors += getattr(form, name).errors
        for entry in form.conditions:
            errors += [str(e) for sub in entry.form for e in sub.errors]
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
    preview = (
        _preview_rows(criteria, service.preview(session, policy))
        if status == "draft" and criteria
        else None
    )
    return render_template(
        "console/policy_detail.html",
        policy=policy,
        status=status,
        status_text=STATUS_TEXT[status],
        status_tag=STATUS_TAG[status],
        kind=KIND_TEXT.get(BenefitKind(policy.benefit_kind).value, ""),
        delivery=Delivery(policy.delivery),
        automatic=Delivery(policy.delivery) is Delivery.AUTOMATIC,
        criteria=criteria,
        preview=preview,
        reach=_reach(policy) if status != "draft" else None,
        withdraw_form=withdraw_form or WithdrawForm(),
    )


@blp.get("/policies/<int:policy_id>/reach")
@console_page(OFFICER)
def policy_reach(policy_id: int) -> str:
    """The reach figures alone (htmx), polled while pushes are still draining."""
    policy = _policy(policy_id)
    return render_template("console/policy_reach.html", policy=policy, reach=_reach(policy))


@blp.get("/policies/<int:policy_id>/stats")
@console_page(OFFICER)
def policy_stats(policy_id: int) -> str:
    """Reach statistics with their chart, and for 免申即享 the beneficiary list."""
    policy = _policy(policy_id)
    automatic = Delivery(policy.delivery) is Delivery.AUTOMATIC
    header, rows = _beneficiaries(policy) if automatic else ([], [])
    status = _status(policy)
    return render_template(
        "console/policy_stats.html",
        policy=policy,
        status_text=STATUS_TEXT[status],
        status_tag=STATUS_TAG[status],
        reach=_reach(policy),
        automatic=automatic,
        beneficiary_header=header,
        beneficiaries=rows,
    )


@blp.post("/policies/<int:policy_id>/publish")
@console_page(OFFICER)
def policy_publish(policy_id: int) -> Any:
    policy = _policy(policy_id)
    session = get_session()
    matched = service.publish(session, policy, staff_id=current_principal().id, now=utcnow())
    session.commit()
    jobs.kick()  # the pushes drain in the job runner; the page polls the figures
    then = "推送正在发送，下方数字会自动更新" if matched else "暂无可推送的企业"
    flash(f"已发布：匹配 {matched} 家企业，{then}", "success")
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
