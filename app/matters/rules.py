"""A matter version's approval rules, in the project's one rule language.

The `rules` section of a matter version:

    "rules": {
      "lookups": ["enterprise_registry", "advertising_zones"],     shared data the rules read
      "parameters": {"max_area_m2": {"kind": "number", "label": "...", "unit": "㎡", "value": 20}},
      "rules": [{"id": "AREA", "message": "...", "basis": "...", "when": <expression>}],
      "tests": [{"name": "...", "form": {...}, "facts": {...}, "today": "2026-05-06",
                 "expect": "approve" | "review", "failing": ["AREA"]}]
    }

An expression reads the form (`form.width_m`), `today`, and the facts of the connectors it
looks up (`enterprise.status`). Parameters are the thresholds and lists staff edit apart from
the rules (`matter_parameters`); the file's value is the default. Every rule must hold for an
instant approval; a rule that fails or cannot be decided (missing data, a connector down) sends
the application to a reviewer with that rule's message. A decision keeps each rule's outcome and
the facts and parameters it saw, so `replay` gives the same outcome later. A version cannot be
published unless its tests pass.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.rules import expressions
from app.rules.expressions import Field, Tri, Vocabulary
from app.shared_data.catalogue import CONNECTORS

APPROVE = "approve"
REVIEW = "review"

RULES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["lookups", "parameters", "rules", "tests"],
    "properties": {
        "lookups": {"type": "array", "uniqueItems": True, "items": {"enum": sorted(CONNECTORS)}},
        "parameters": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-z][a-z0-9_]{0,31}$"},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["kind", "label", "value"],
                "properties": {
                    "kind": {"enum": ["number", "integer", "text", "date", "boolean", "list"]},
                    "label": {"type": "string", "minLength": 1, "maxLength": 64},
                    "unit": {"type": "string", "maxLength": 16},
                    "value": {},
                },
            },
        },
        "rules": {
            "type": "array",
            "maxItems": 40,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "message", "basis", "when"],
                "properties": {
                    "id": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]{0,31}$"},
                    "message": {"type": "string", "minLength": 2, "maxLength": 128},
                    "basis": {"type": "string", "minLength": 2, "maxLength": 200},
                    "when": {"type": "object"},
                },
            },
        },
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "form", "expect"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 128},
                    "form": {"type": "object"},
                    "facts": {"type": "object"},
                    "today": {"type": "string", "format": "date"},
                    "expect": {"enum": [APPROVE, REVIEW]},
                    "failing": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


class RulesInvalid(ValueError):
    """A rule set that does not parse; `problems` maps a path to what is wrong."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class Rule:
    id: str
    message: str
    basis: str
    when: dict[str, Any]
    reads: tuple[str, ...]
    parameters: tuple[str, ...]


@dataclass(frozen=True)
class RuleSet:
    lookups: tuple[str, ...]
    parameters: Mapping[str, Mapping[str, Any]]
    rules: tuple[Rule, ...]
    tests: tuple[Mapping[str, Any], ...]
    vocabulary: Vocabulary

    def defaults(self) -> dict[str, Any]:
        return {name: spec["value"] for name, spec in self.parameters.items()}


@dataclass(frozen=True)
class RuleOutcome:
    id: str
    message: str
    basis: str
    result: Tri
    explanation: str
    inputs: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "message": self.message,
            "basis": self.basis,
            "result": self.result.value,
            "result_label": self.result.label,
            "explanation": f"{self.explanation} {self.result.mark}",
            "inputs": self.inputs,
        }


@dataclass(frozen=True)
class Decision:
    outcome: str  # approve | review
    results: tuple[RuleOutcome, ...]
    facts: dict[str, Any]
    parameters: dict[str, Any]
    unavailable: tuple[str, ...]  # connectors that failed or timed out
    reasons: tuple[str, ...]  # why a reviewer must look, in Chinese

    @property
    def failing(self) -> list[str]:
        return [r.id for r in self.results if r.result != Tri.PASS]

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "results": [r.as_json() for r in self.results],
            "facts": self.facts,
            "parameters": self.parameters,
            "unavailable": list(self.unavailable),
            "reasons": list(self.reasons),
        }


_FORM_KINDS = {"number": "number", "integer": "integer", "boolean": "boolean"}


def _form_fields(form_schema: Mapping[str, Any]) -> dict[str, Field]:
    """Each top-level form property as a field: `form.<name>`, typed from its schema."""
    fields = {}
    for name, spec in (form_schema.get("properties") or {}).items():
        if not isinstance(spec, Mapping):
            continue
        kind = _FORM_KINDS.get(str(spec.get("type")), "text")
        if spec.get("format") == "date":
            kind = "date"
        if isinstance(spec.get("const"), bool):
            kind = "boolean"
        label = str(spec.get("title") or name)
        fields[f"form.{name}"] = Field(f"form.{name}", kind, label)
    return fields


def vocabulary_for(
    form_schema: Mapping[str, Any],
    lookups: Sequence[str],
    parameters: Mapping[str, Mapping[str, Any]],
) -> Vocabulary:
    fields = {"today": Field("today", "date", "今天"), **_form_fields(form_schema)}
    for name in lookups:
        fields.update({f.name: f for f in CONNECTORS[name].fields})
    params = {
        name: Field(
            name,
            "text" if spec["kind"] == "list" else spec["kind"],
            spec["label"],
            spec.get("unit", ""),
        )
        for name, spec in parameters.items()
    }

    def fail(path: str, message: str) -> Exception:
        return RulesInvalid({path: message})

    return Vocabulary(fields=fields, fail=fail, parameters=params, arithmetic=True)


def _check_parameter(name: str, spec: Mapping[str, Any]) -> str | None:
    value, kind = spec["value"], spec["kind"]
    ok = {
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "text": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "date": isinstance(value, str) and _is_date(value),
        "list": isinstance(value, list) and all(isinstance(v, str) for v in value),
    }[kind]
    return None if ok else f"参数 {name} 的取值与类型 {kind} 不符"


def check_parameter_value(spec: Mapping[str, Any], value: Any) -> bool:
    return _check_parameter("", {**spec, "value": value}) is None


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def parse(raw: Mapping[str, Any], form_schema: Mapping[str, Any]) -> RuleSet:
    """A rule set checked against the form and the connectors (RulesInvalid otherwise).
    `raw` has already passed RULES_SCHEMA."""
    problems: dict[str, str] = {}
    for name, spec in raw["parameters"].items():
        problem = _check_parameter(name, spec)
        if problem:
            problems[f"rules.parameters.{name}"] = problem
    if problems:
        raise RulesInvalid(problems)
    vocabulary = vocabulary_for(form_schema, raw["lookups"], raw["parameters"])
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, item in enumerate(raw["rules"]):
        path = f"rules.rules[{index}]"
        if item["id"] in seen:
            problems[f"{path}.id"] = "规则编号须唯一"
            continue
        seen.add(item["id"])
        try:
            when = expressions.validate(vocabulary, item["when"], f"{path}.when")
        except RulesInvalid as error:
            problems.update(error.problems)
            continue
        reads, params = expressions.inputs(when)
        rules.append(
            Rule(item["id"], item["message"], item["basis"], when, tuple(reads), tuple(params))
        )
    for index, case in enumerate(raw["tests"]):
        unknown = set(case.get("failing", [])) - seen
        if unknown:
            problems[f"rules.tests[{index}].failing"] = f"未知的规则：{', '.join(sorted(unknown))}"
    if problems:
        raise RulesInvalid(problems)
    return RuleSet(
        tuple(raw["lookups"]),
        dict(raw["parameters"]),
        tuple(rules),
        tuple(raw["tests"]),
        vocabulary,
    )


def form_facts(form: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
    return {"today": today.isoformat(), **{f"form.{k}": v for k, v in form.items()}}


def decide(
    rule_set: RuleSet,
    facts: Mapping[str, Any],
    parameters: Mapping[str, Any],
    *,
    unavailable: Sequence[str] = (),
) -> Decision:
    """Every rule's outcome on `facts`; approve only when each one holds."""
    evaluator = expressions.Evaluator(rule_set.vocabulary, parameters)
    results = []
    for rule in rule_set.rules:
        result = expressions.tri(evaluator.evaluate(rule.when, facts))
        inputs = {name: facts.get(name) for name in rule.reads}
        inputs.update({name: parameters.get(name) for name in rule.parameters})
        results.append(
            RuleOutcome(
                rule.id,
                rule.message,
                rule.basis,
                result,
                evaluator.describe(rule.when, facts),
                inputs,
            )
        )
    reasons = [f"数据共享接口不可用：{CONNECTORS[name].label}" for name in unavailable] + [
        f"{r.message}：{'不符合' if r.result == Tri.FAIL else '无法核实'}"
        for r in results
        if r.result != Tri.PASS
    ]
    if not rule_set.rules:
        reasons.append("该事项须人工审查")
    outcome = APPROVE if not reasons else REVIEW
    seen_facts = {name: facts.get(name) for name in rule_set.vocabulary.fields if name in facts}
    return Decision(
        outcome,
        tuple(results),
        seen_facts,
        dict(parameters),
        tuple(unavailable),
        tuple(reasons),
    )


def replay(rule_set: RuleSet, stored: Mapping[str, Any]) -> Decision:
    """The decision a stored one's facts and parameters give under the same rules."""
    return decide(
        rule_set,
        stored["facts"],
        stored["parameters"],
        unavailable=stored.get("unavailable", ()),
    )


def run_tests(rule_set: RuleSet) -> dict[str, str]:
    """{test name: what went wrong} for each shipped test case that does not hold."""
    failures = {}
    defaults = rule_set.defaults()
    for case in rule_set.tests:
        today = dt.date.fromisoformat(case.get("today", "2026-06-01"))
        facts = {**form_facts(case["form"], today), **case.get("facts", {})}
        decision = decide(rule_set, facts, defaults)
        wanted_failing = sorted(case.get("failing", []))
        if decision.outcome != case["expect"]:
            failures[case["name"]] = (
                f"期望 {case['expect']}，实际 {decision.outcome}（未通过：{decision.failing}）"
            )
        elif (
            case["expect"] == REVIEW
            and wanted_failing
            and sorted(decision.failing) != wanted_failing
        ):
            failures[case["name"]] = f"期望未通过 {wanted_failing}，实际 {sorted(decision.failing)}"
    return failures
