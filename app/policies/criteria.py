"""Eligibility criteria: a whitelisted JSON-Logic-like expression tree, two evaluators.

A policy's criteria are a list of criteria, all of which must hold; each has a Chinese label,
its source clause (文号 and article) and one expression:

    {"and": [e, ...]}  {"or": [e, ...]}  {"not": e}
    {"==": [{"var": f}, v]}  and  "!=", "<", "<=", ">", ">="
    {"between": [{"var": f}, low, high]}          inclusive at both ends
    {"in": [{"var": f}, [v, ...]]}
    {"industry_prefix": ["H61", "H62"]}           GB/T 4754 prefix of the industry code
    {"has_tag": "高新技术企业"}

Fields: industry_code, town, size_class (text: ==, !=, in); established_on (ISO date);
employees, revenue_yuan (integers). Nothing else parses: the tree is data, never code.

Both evaluators use Kleene's three-valued logic, where a field the profile lacks (NULL) makes a
comparison unknown: `to_sql` builds one SQLAlchemy expression for set-based matching in the
database (SQL's own NULL logic), `evaluate` the same in Python for one profile. A randomised
test keeps them in agreement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, not_, null, or_

from app.policies import reference
from app.policies.errors import InvalidCriteria
from app.rules import expressions
from app.rules.expressions import Tri, tri

TEXT_FIELDS = {"industry_code", "town", "size_class"}
INT_FIELDS = {"employees", "revenue_yuan"}
DATE_FIELDS = {"established_on"}
FIELDS = TEXT_FIELDS | INT_FIELDS | DATE_FIELDS
COMPARISONS = expressions.COMPARISONS
FIELD_LABELS = {
    "industry_code": "行业",
    "town": "注册镇街",
    "size_class": "企业规模",
    "established_on": "成立日期",
    "employees": "从业人数",
    "revenue_yuan": "年营业收入（元）",
}
MAX_CRITERIA = 20
AUTHORITATIVE = "authoritative"
FACT_SOURCES = ("any", AUTHORITATIVE)


# -- validation --------------------------------------------------------------------------------


def _fail(path: str, message: str) -> InvalidCriteria:
    return InvalidCriteria(f"政策适用条件有误：{message}", field=path, reason=message)


def _profile_literal(spec: expressions.Field, value: Any, path: str) -> Any:
    """A literal that names something the reference data must know: a town, a size class,
    an industry code (normalised)."""
    if spec.name == "town" and value not in reference.TOWNS:
        raise _fail(path, f"未知的镇街：{value}")
    if spec.name == "size_class" and value not in {s.value for s in reference.SizeClass}:
        raise _fail(path, f"未知的企业规模：{value}")
    if spec.name == "industry_code":
        code = reference.normalise_industry_code(value)
        if not reference.is_valid_industry_code(code):
            raise _fail(path, f"未知的行业代码：{value}")
        return code
    return value


def _validate_industry_prefix(args: Any, path: str) -> list[str]:
    prefixes = args if isinstance(args, list) else [args]
    if not prefixes:
        raise _fail(path, "行业代码列表为空")
    out = []
    for i, raw in enumerate(prefixes):
        if not isinstance(raw, str):
            raise _fail(f"{path}.industry_prefix[{i}]", "行业代码须为文本")
        code = reference.normalise_industry_code(raw)
        if not reference.is_valid_industry_code(code):
            raise _fail(f"{path}.industry_prefix[{i}]", f"未知的行业代码：{raw}")
        out.append(code)
    return sorted(set(out))


def _validate_has_tag(args: Any, path: str) -> str:
    if args not in reference.TAGS:
        raise _fail(path, f"未知的企业标签：{args}")
    return str(args)


def _has_industry_prefix(args: Any, profile: Mapping[str, Any]) -> bool | None:
    code = profile.get("industry_code")
    return None if code is None else any(code.startswith(p) for p in args)


def _has_tag(args: Any, profile: Mapping[str, Any]) -> bool | None:
    bits = profile.get("tag_bits")
    if profile.get("unverified_tag_bits", 0) & reference.TAG_BITS[args]:
        return None  # only in authoritative_view: declared, not confirmed
    return None if bits is None else bool(bits & reference.TAG_BITS[args])


_KINDS = {
    **{name: "text" for name in TEXT_FIELDS},
    **{name: "integer" for name in INT_FIELDS},
    **{name: "date" for name in DATE_FIELDS},
}
VOCABULARY = expressions.Vocabulary(
    fields={
        name: expressions.Field(name, _KINDS[name], FIELD_LABELS[name]) for name in sorted(FIELDS)
    },
    fail=_fail,
    check_literal=_profile_literal,
    operators={
        "industry_prefix": expressions.Operator(
            _validate_industry_prefix,
            _has_industry_prefix,
            lambda args: f"行业属于 {'、'.join(args)}",
        ),
        "has_tag": expressions.Operator(
            _validate_has_tag, _has_tag, lambda args: f"具有{args}资质"
        ),
    },
)
_EVALUATOR = expressions.Evaluator(VOCABULARY)


def validate(
    node: Any, path: str = "rule", *, depth: int = 0, counter: list[int] | None = None
) -> Any:
    """Check one expression and return it normalised (dates as ISO text, codes upper-cased)."""
    return expressions.validate(VOCABULARY, node, path, depth=depth, counter=counter)


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


@dataclass(frozen=True)
class Criterion:
    """One labelled criterion of a policy."""

    id: str
    label: str
    rule: dict[str, Any]
    doc: str = ""
    article: str = ""
    # Shown to an enterprise that fails only this criterion ("若取得高新技术企业认定即可申报").
    hint: str = ""
    # "authoritative": facts the enterprise declared itself and no authority confirmed count
    # as unknown (待核实) here. Forced for every criterion of a policy that pays money.
    facts: str = "any"

    @property
    def authoritative(self) -> bool:
        return self.facts == AUTHORITATIVE

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "rule": self.rule,
            "source": {"doc": self.doc, "article": self.article},
            "hint": self.hint,
            "facts": self.facts,
        }


def _optional_text(item: Mapping[str, Any], key: str, path: str, limit: int, message: str) -> str:
    """An optional text field: "" when absent or null, else text of at most `limit`."""
    value = item.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise _fail(path, message)
    return value


def parse_criteria(raw: Any, *, default_doc: str = "") -> list[Criterion]:
    """Validate a list of criteria; raise InvalidCriteria naming the field at fault."""
    if not isinstance(raw, list):
        raise _fail("criteria", "适用条件须为列表")
    if len(raw) > MAX_CRITERIA:
        raise _fail("criteria", f"适用条件最多 {MAX_CRITERIA} 项")
    out: list[Criterion] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        path = f"criteria[{index}]"
        if not isinstance(item, Mapping):
            raise _fail(path, "每项条件须为对象")
        unknown = set(item) - {"id", "label", "rule", "source", "hint", "facts"}
        if unknown:
            raise _fail(path, f"未知字段：{', '.join(sorted(unknown))}")
        label = item.get("label")
        if not isinstance(label, str) or not label.strip() or len(label) > 64:
            raise _fail(f"{path}.label", "须有中文说明（不超过64字）")
        # Optional fields are absent, null, or of their type: never a falsy stand-in.
        cid = _optional_text(item, "id", f"{path}.id", 32, "条件编号须为不超过32字的文本")
        cid = cid or f"c{index + 1}"
        if cid in seen:
            raise _fail(f"{path}.id", "条件编号须唯一")
        seen.add(cid)
        source = item.get("source")
        if source is None:
            source = {}
        if not isinstance(source, Mapping) or set(source) - {"doc", "article"}:
            raise _fail(f"{path}.source", "来源须为 {doc, article}")
        doc = _optional_text(source, "doc", f"{path}.source", 128, "来源须为文本") or default_doc
        article = _optional_text(source, "article", f"{path}.source", 128, "来源须为文本")
        hint = _optional_text(item, "hint", f"{path}.hint", 128, "提示须为不超过128字的文本")
        facts = item.get("facts")
        if facts is None:
            facts = "any"
        if not isinstance(facts, str) or facts not in FACT_SOURCES:
            raise _fail(f"{path}.facts", "facts 须为 any（含自报）或 authoritative（仅权威来源）")
        rule = validate(item.get("rule"), f"{path}.rule")
        out.append(Criterion(cid, label.strip(), rule, doc, article, hint, facts))
    return out


def load(stored: Sequence[Mapping[str, Any]]) -> list[Criterion]:
    """Criteria as stored (already validated) back to objects."""
    return [
        Criterion(
            id=c["id"],
            label=c["label"],
            rule=c["rule"],
            doc=c.get("source", {}).get("doc", ""),
            article=c.get("source", {}).get("article", ""),
            hint=c.get("hint", ""),
            facts=c.get("facts", "any"),
        )
        for c in stored
    ]


def requiring_authoritative(criteria: Sequence[Criterion]) -> list[Criterion]:
    """The same criteria, each counting authoritative facts only."""
    return [replace(c, facts=AUTHORITATIVE) for c in criteria]


# -- the structured form an officer fills in -------------------------------------------------

STRUCTURED_KEYS = {
    "industry_include",
    "industry_exclude",
    "size_classes",
    "towns",
    "tags_all",
    "tags_any",
    "tags_none",
    "established_before",
    "established_after",
    "employees_min",
    "employees_max",
    "revenue_min_yuan",
    "revenue_max_yuan",
    "article",
}


def _range_rule(field: str, low: Any, high: Any) -> dict[str, Any]:
    if low is not None and high is not None:
        return {"between": [{"var": field}, low, high]}
    if low is not None:
        return {">=": [{"var": field}, low]}
    return {"<=": [{"var": field}, high]}


def from_structured(form: Mapping[str, Any], *, doc: str) -> list[Criterion]:
    """Criteria from the form's fields (industries, sizes, towns, tags, dates, ranges).

    Contradictions are refused: an included industry inside an excluded one, a tag both
    required and excluded, an empty range.
    """
    unknown = set(form) - STRUCTURED_KEYS
    if unknown:
        raise _fail("criteria_form", f"未知字段：{', '.join(sorted(unknown))}")
    article = str(form.get("article") or "")
    raw: list[dict[str, Any]] = []

    def add(cid: str, label: str, rule: dict[str, Any], hint: str = "") -> None:
        raw.append(
            {
                "id": cid,
                "label": label,
                "rule": rule,
                "hint": hint,
                "source": {"doc": doc, "article": article},
            }
        )

    include = [reference.normalise_industry_code(c) for c in form.get("industry_include") or []]
    exclude = [reference.normalise_industry_code(c) for c in form.get("industry_exclude") or []]
    for name, codes in (("industry_include", include), ("industry_exclude", exclude)):
        for i, code in enumerate(codes):
            if not reference.is_valid_industry_code(code):
                raise _fail(f"criteria_form.{name}[{i}]", f"未知的行业代码：{code}")
    for i, code in enumerate(include):
        if any(code.startswith(x) for x in exclude):
            raise _fail(f"criteria_form.industry_include[{i}]", f"行业 {code} 同时被排除，条件矛盾")
    if include:
        names = "、".join(reference.industry_label(c) for c in include)
        add("industry", f"属于{names}", {"industry_prefix": include})
    if exclude:
        names = "、".join(reference.industry_label(c) for c in exclude)
        add("industry_exclude", f"不属于{names}", {"not": {"industry_prefix": exclude}})
    sizes = form.get("size_classes")
    if sizes is not None:
        if not sizes:
            raise _fail("criteria_form.size_classes", "企业规模列表为空")
        known = {s.value for s in reference.SizeClass}
        bad = [s for s in sizes if s not in known]
        if bad:
            raise _fail("criteria_form.size_classes", f"未知的企业规模：{bad[0]}")
        labels = "或".join(reference.SizeClass(s).label for s in sizes)
        add("size", f"{labels}企业", {"in": [{"var": "size_class"}, list(sizes)]})
    towns = form.get("towns")
    if towns is not None:
        if not towns:
            raise _fail("criteria_form.towns", "镇街列表为空")
        add("town", f"注册于{'、'.join(towns)}", {"in": [{"var": "town"}, list(towns)]})
    tags_all = list(form.get("tags_all") or [])
    tags_any = list(form.get("tags_any") or [])
    tags_none = list(form.get("tags_none") or [])
    clash = (set(tags_all) | set(tags_any)) & set(tags_none)
    if clash:
        names = "、".join(sorted(clash))
        raise _fail("criteria_form.tags_none", f"标签既要求又排除，条件矛盾：{names}")
    for tag in tags_all:
        add(
            f"tag_{reference.TAGS.index(tag) if tag in reference.TAGS else tag}",
            f"具有{tag}资质",
            {"has_tag": tag},
            hint=f"若取得{tag}认定即可申报",
        )
    if tags_any:
        either = "或".join(tags_any)
        rule = {"or": [{"has_tag": t} for t in tags_any]}
        add("tags_any", f"具有{either}之一", rule, hint=f"若取得{either}认定即可申报")
    if tags_none:
        add(
            "tags_none",
            f"不属于{'、'.join(tags_none)}",
            {"not": {"or": [{"has_tag": t} for t in tags_none]}},
        )
    after, before = form.get("established_after"), form.get("established_before")
    if after is not None or before is not None:
        if after is not None and before is not None and str(after) > str(before):
            raise _fail("criteria_form.established_after", "成立日期范围为空：起始晚于截止")
        parts = ([f"{after}及以后"] if after else []) + ([f"{before}及以前"] if before else [])
        add(
            "established",
            f"成立于{'、'.join(parts)}",
            _range_rule("established_on", _iso(after), _iso(before)),
        )
    for field, low_key, high_key, unit in (
        ("employees", "employees_min", "employees_max", "人"),
        ("revenue_yuan", "revenue_min_yuan", "revenue_max_yuan", "元"),
    ):
        low, high = form.get(low_key), form.get(high_key)
        if low is None and high is None:
            continue
        if low is not None and high is not None and low > high:
            raise _fail(f"criteria_form.{low_key}", f"{FIELD_LABELS[field]}范围为空：下限大于上限")
        text = "至".join(str(v) for v in (low, high) if v is not None)
        bound = "以上" if high is None else ("以下" if low is None else "")
        add(
            field,
            f"{FIELD_LABELS[field].split('（')[0]}{text}{unit}{bound}（含）",
            _range_rule(field, low, high),
        )
    if not raw:
        raise _fail("criteria_form", "至少需要一项适用条件")
    return parse_criteria(raw, default_doc=doc)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


# -- Python evaluation -------------------------------------------------------------------------


def evaluate(node: Mapping[str, Any], profile: Mapping[str, Any]) -> bool | None:
    """Evaluate a validated expression on one profile; None means unknown."""
    return _EVALUATOR.evaluate(node, profile)


@dataclass(frozen=True)
class CriterionResult:
    criterion: Criterion
    result: Tri


def authoritative_view(profile: Mapping[str, Any]) -> dict[str, Any]:
    """The profile as authoritative criteria see it: unconfirmed self-declared fields unknown,
    unconfirmed tags marked for `has_tag` to read as unknown."""
    unverified = profile.get("unverified_fields") or 0
    view = {
        key: (None if unverified & reference.FACT_BITS.get(key, 0) else value)
        for key, value in profile.items()
    }
    view["unverified_tag_bits"] = profile.get("unverified_tag_bits") or 0
    return view


def _plain_view(profile: Mapping[str, Any]) -> dict[str, Any]:
    return {**profile, "unverified_tag_bits": 0}


def evaluate_all(
    criteria: Sequence[Criterion], profile: Mapping[str, Any]
) -> list[CriterionResult]:
    """Each criterion's three-valued result for one profile."""
    plain, strict = _plain_view(profile), authoritative_view(profile)
    return [
        CriterionResult(c, tri(evaluate(c.rule, strict if c.authoritative else plain)))
        for c in criteria
    ]


def results_string(results: Sequence[CriterionResult]) -> str:
    return "".join(r.result.value for r in results)


# -- SQL compilation ---------------------------------------------------------------------------


def _coerce(field: str, value: Any) -> Any:
    return dt.date.fromisoformat(value) if field in DATE_FIELDS else value


def to_sql(node: Mapping[str, Any], columns: Mapping[str, Any]) -> ColumnElement[bool]:
    """The same expression as SQL over `columns` (field name -> column), NULL = unknown."""
    ((op, args),) = node.items()
    if op == "and":
        return and_(*[to_sql(a, columns) for a in args])
    if op == "or":
        return or_(*[to_sql(a, columns) for a in args])
    if op == "not":
        return not_(to_sql(args, columns))
    if op == "industry_prefix":
        column = columns["industry_code"]
        tests = [func.substr(column, 1, len(p)) == p for p in args]
        return tests[0] if len(tests) == 1 else or_(*tests)
    if op == "has_tag":
        bit = reference.TAG_BITS[args]
        has = columns["tag_bits"].op("&")(bit) != 0
        unverified = columns.get("unverified_tag_bits")
        if unverified is None:
            return has
        # Declared but not confirmed: unknown, as in `evaluate` on the authoritative view.
        return case((unverified.op("&")(bit) != 0, null()), else_=has)
    field = args[0]["var"]
    column = columns[field]
    if op == "between":
        return column.between(_coerce(field, args[1]), _coerce(field, args[2]))
    if op == "in":
        return column.in_([_coerce(field, v) for v in args[1]])
    other = _coerce(field, args[1])
    return {
        "==": column == other,
        "!=": column != other,
        "<": column < other,
        "<=": column <= other,
        ">": column > other,
        ">=": column >= other,
    }[op]


def authoritative_columns(columns: Mapping[str, Any]) -> dict[str, Any]:
    """`columns` as authoritative criteria see them (the SQL twin of `authoritative_view`):
    each self-declared, unconfirmed field NULL, and unconfirmed tags known to `has_tag`."""
    unverified = columns["unverified_fields"]
    view: dict[str, Any] = {
        key: (
            case((unverified.op("&")(reference.FACT_BITS[key]) != 0, null()), else_=column)
            if key in reference.FACT_BITS
            else column
        )
        for key, column in columns.items()
        if key not in ("unverified_fields", "unverified_tag_bits")
    }
    view["unverified_tag_bits"] = columns["unverified_tag_bits"]
    return view


def columns_for(criterion: Criterion, columns: Mapping[str, Any]) -> Mapping[str, Any]:
    """The columns `criterion` reads: all facts, or authoritative ones only."""
    if criterion.authoritative:
        return authoritative_columns(columns)
    markers = ("unverified_fields", "unverified_tag_bits")
    return {k: v for k, v in columns.items() if k not in markers}


def result_sql(rule: Mapping[str, Any], columns: Mapping[str, Any]) -> ColumnElement[str]:
    """'P', 'F' or 'U' for one criterion, in SQL."""
    expression = to_sql(rule, columns)
    return case((expression, literal("P")), (not_(expression), literal("F")), else_=literal("U"))


def results_sql(criteria: Sequence[Criterion], columns: Mapping[str, Any]) -> ColumnElement[str]:
    """The per-criterion results string ("PPUP") of every row, in SQL."""
    parts = [result_sql(c.rule, columns_for(c, columns)) for c in criteria]
    out = parts[0]
    for part in parts[1:]:
        out = out.concat(part)
    return out
