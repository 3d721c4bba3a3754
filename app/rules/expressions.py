"""The project's one rule language: whitelisted JSON expressions, three-valued evaluation.

Policies' eligibility criteria and matters' approval rules are both written in it; each domain
brings a `Vocabulary` (the fields an expression may read, their types, domain operators, and
whether named parameters and arithmetic are allowed). Nothing outside the grammar parses: the
tree is data, never code.

    {"and": [e, ...]}  {"or": [e, ...]}  {"not": e}
    {"==": [a, b]}  and  "!=", "<", "<=", ">", ">="
    {"between": [a, low, high]}        inclusive at both ends
    {"in": [a, [v, ...]]}
    operands a, b:  {"var": field}  a literal  {"param": name}  (vocabularies with parameters)
                    {"*": [a, b]}  {"+": [a, b]}  {"-": [a, b]}  {"days_between": [d1, d2]}
                    (vocabularies with arithmetic; days_between counts both ends)

Kleene's logic: a field the facts lack (None) makes every comparison that reads it unknown,
`and` is false if any part is false, `or` true if any part is true, otherwise unknown.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
ARITHMETIC = ("*", "+", "-", "days_between")
SYMBOLS = {"==": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥"}
KINDS = ("text", "integer", "number", "date", "boolean")
MAX_DEPTH = 8
MAX_NODES = 200


class Tri(enum.StrEnum):
    PASS = "P"  # nosec B105  # a rule outcome code, not a password
    FAIL = "F"
    UNKNOWN = "U"

    @property
    def label(self) -> str:
        return {"P": "符合", "F": "不符合", "U": "信息不足"}[self.value]

    @property
    def mark(self) -> str:
        return {"P": "✓", "F": "✗", "U": "?"}[self.value]


def tri(value: bool | None) -> Tri:
    return Tri.UNKNOWN if value is None else (Tri.PASS if value else Tri.FAIL)


@dataclass(frozen=True)
class Field:
    """One fact an expression may read."""

    name: str
    kind: str  # text | integer | number | date | boolean
    label: str
    unit: str = ""

    @property
    def ordered(self) -> bool:
        return self.kind in ("integer", "number", "date")


@dataclass(frozen=True)
class Operator:
    """A domain operator beside the common ones (the policies' `industry_prefix`)."""

    validate: Callable[[Any, str], Any]  # (args, path) -> normalised args
    evaluate: Callable[[Any, Mapping[str, Any]], bool | None]  # (args, facts)
    describe: Callable[[Any], str] = lambda args: ""


def _default_fail(path: str, message: str) -> Exception:
    return ValueError(f"{path}: {message}")


@dataclass(frozen=True)
class Vocabulary:
    fields: Mapping[str, Field]
    fail: Callable[[str, str], Exception] = _default_fail
    # Domain checks of a literal after its type check (a town that exists, an industry code).
    check_literal: Callable[[Field, Any, str], Any] | None = None
    operators: Mapping[str, Operator] = field(default_factory=dict)
    parameters: Mapping[str, Field] = field(default_factory=dict)
    arithmetic: bool = False


# -- validation --------------------------------------------------------------------------------


def _bad_literal(vocabulary: Vocabulary, spec: Field, path: str) -> Exception:
    messages = {
        "integer": f"{spec.label}须为非负整数",
        "number": f"{spec.label}须为数值",
        "date": "日期格式应为 YYYY-MM-DD",
        "boolean": f"{spec.label}须为 true 或 false",
        "text": f"{spec.label}须为文本",
    }
    return vocabulary.fail(path, messages[spec.kind])


def check_literal(vocabulary: Vocabulary, spec: Field, value: Any, path: str) -> Any:
    """`value` checked for `spec`'s type (and the domain's own checks), normalised."""
    kind = spec.kind
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**15:
            raise _bad_literal(vocabulary, spec, path)
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) >= 10**15:
            raise _bad_literal(vocabulary, spec, path)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise _bad_literal(vocabulary, spec, path)
    elif kind == "date":
        try:
            if not isinstance(value, str):
                raise ValueError
            value = dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise _bad_literal(vocabulary, spec, path) from None
    elif not isinstance(value, str):
        raise _bad_literal(vocabulary, spec, path)
    if vocabulary.check_literal is not None:
        return vocabulary.check_literal(spec, value, path)
    return value


def _var(vocabulary: Vocabulary, node: Any, path: str) -> Field:
    if not (
        isinstance(node, Mapping)
        and set(node) == {"var"}
        and isinstance(node["var"], str)
        and node["var"] in vocabulary.fields
    ):
        names = ", ".join(sorted(vocabulary.fields))
        raise vocabulary.fail(path, f'应为字段引用 {{"var": ...}}，可用字段：{names}')
    return vocabulary.fields[node["var"]]


_NUMBER = Field("", "number", "计算结果")


def _operand(vocabulary: Vocabulary, node: Any, path: str, depth: int) -> tuple[Any, Field]:
    """A value-reading operand (field, or arithmetic over fields): normalised, and its type."""
    if depth > MAX_DEPTH:
        raise vocabulary.fail(path, "条件嵌套过深或过长")
    if isinstance(node, Mapping) and len(node) == 1:
        ((op, args),) = node.items()
        if op == "var":
            return dict(node), _var(vocabulary, node, path)
        if op in ARITHMETIC and vocabulary.arithmetic:
            if not isinstance(args, list) or len(args) != 2:
                raise vocabulary.fail(path, f"{op} 需要两个参数")
            parts = [
                _value(vocabulary, a, f"{path}.{op}[{i}]", depth + 1) for i, a in enumerate(args)
            ]
            wanted = "date" if op == "days_between" else "number"
            for i, (_, spec) in enumerate(parts):
                if (spec.kind == "date") != (wanted == "date") or spec.kind not in (
                    "date",
                    "integer",
                    "number",
                ):
                    raise vocabulary.fail(
                        f"{path}.{op}[{i}]",
                        "days_between 需要日期" if wanted == "date" else "需要数值",
                    )
            return {op: [p for p, _ in parts]}, _NUMBER
    names = ", ".join(sorted(vocabulary.fields))
    raise vocabulary.fail(path, f'应为字段引用 {{"var": ...}}，可用字段：{names}')


def _value(
    vocabulary: Vocabulary, node: Any, path: str, depth: int, like: Field | None = None
) -> tuple[Any, Field]:
    """An operand that may also be a parameter or (typed as `like`) a literal."""
    if isinstance(node, Mapping) and set(node) == {"param"} and vocabulary.parameters:
        name = node["param"]
        if not isinstance(name, str) or name not in vocabulary.parameters:
            names = ", ".join(sorted(vocabulary.parameters))
            raise vocabulary.fail(path, f"未知的参数，可用参数：{names}")
        return {"param": name}, vocabulary.parameters[name]
    if isinstance(node, Mapping) and (vocabulary.arithmetic or like is None):
        return _operand(vocabulary, node, path, depth)
    if like is None:
        raise vocabulary.fail(path, "此处应为字段或计算式")
    return check_literal(vocabulary, like, node, path), like


def _comparable(left: Field, right: Field) -> bool:
    numeric = ("integer", "number")
    return left.kind == right.kind or (left.kind in numeric and right.kind in numeric)


def validate(
    vocabulary: Vocabulary,
    node: Any,
    path: str = "rule",
    *,
    depth: int = 0,
    counter: list[int] | None = None,
) -> Any:
    """Check one expression against `vocabulary`; return it normalised."""
    counter = counter if counter is not None else [0]
    counter[0] += 1
    fail = vocabulary.fail
    if depth > MAX_DEPTH or counter[0] > MAX_NODES:
        raise fail(path, "条件嵌套过深或过长")
    if not isinstance(node, Mapping) or len(node) != 1:
        raise fail(path, "每个条件须为只含一个运算符的对象")
    ((op, args),) = node.items()

    def sub(child: Any, child_path: str) -> Any:
        return validate(vocabulary, child, child_path, depth=depth + 1, counter=counter)

    if op in ("and", "or"):
        if not isinstance(args, list) or not args:
            raise fail(path, f"{op} 需要至少一个子条件")
        return {op: [sub(a, f"{path}.{op}[{i}]") for i, a in enumerate(args)]}
    if op == "not":
        inner = args[0] if isinstance(args, list) and len(args) == 1 else args
        return {"not": sub(inner, f"{path}.not")}
    if op in COMPARISONS:
        if not isinstance(args, list) or len(args) != 2:
            raise fail(path, f"{op} 需要两个参数")
        left, left_spec = _operand(vocabulary, args[0], f"{path}.{op}[0]", depth + 1)
        if op not in ("==", "!=") and not left_spec.ordered:
            raise fail(path, f"{left_spec.label}只能比较是否相等")
        right, right_spec = _value(vocabulary, args[1], f"{path}.{op}[1]", depth + 1, left_spec)
        if not _comparable(left_spec, right_spec):
            raise fail(path, f"{left_spec.label}与{right_spec.label}类型不同，不能比较")
        return {op: [left, right]}
    if op == "between":
        if not isinstance(args, list) or len(args) != 3:
            raise fail(path, "between 需要字段、下限、上限三个参数")
        left, spec = _operand(vocabulary, args[0], f"{path}.between[0]", depth + 1)
        if not spec.ordered:
            raise fail(path, f"{spec.label}不能用范围")
        low, _ = _value(vocabulary, args[1], f"{path}.between[1]", depth + 1, spec)
        high, _ = _value(vocabulary, args[2], f"{path}.between[2]", depth + 1, spec)
        literal_bounds = not isinstance(low, Mapping) and not isinstance(high, Mapping)
        if literal_bounds and _coerce(spec, low) > _coerce(spec, high):
            raise fail(path, f"{spec.label}范围为空：下限大于上限")
        return {"between": [left, low, high]}
    if op == "in":
        if not isinstance(args, list) or len(args) != 2:
            raise fail(path, "in 需要字段和取值列表")
        left, spec = _operand(vocabulary, args[0], f"{path}.in[0]", depth + 1)
        if isinstance(args[1], Mapping) and vocabulary.parameters:
            listed, _ = _value(vocabulary, args[1], f"{path}.in[1]", depth + 1)
            return {"in": [left, listed]}
        if not isinstance(args[1], list):
            raise fail(path, "in 需要字段和取值列表")
        if not args[1]:
            raise fail(path, "取值列表为空")
        values = [
            check_literal(vocabulary, spec, v, f"{path}.in[1][{i}]") for i, v in enumerate(args[1])
        ]
        return {"in": [left, sorted(set(values))]}
    if op in vocabulary.operators:
        return {op: vocabulary.operators[op].validate(args, path)}
    raise fail(path, f"不支持的运算符：{op}")


# -- evaluation --------------------------------------------------------------------------------


def _coerce(spec: Field, value: Any) -> Any:
    if spec.kind == "date" and isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


def _and(values: list[bool | None]) -> bool | None:
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def _or(values: list[bool | None]) -> bool | None:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


class Evaluator:
    """Evaluates validated expressions of one vocabulary on facts (and parameter values)."""

    def __init__(self, vocabulary: Vocabulary, params: Mapping[str, Any] | None = None) -> None:
        self.vocabulary = vocabulary
        self.params = params or {}

    def value(self, node: Any, facts: Mapping[str, Any]) -> Any:
        """An operand's value; None when a fact it needs is missing."""
        if not isinstance(node, Mapping):
            return node
        ((op, args),) = node.items()
        if op == "var":
            spec = self.vocabulary.fields[args]
            raw = facts.get(args)
            return None if raw is None else _coerce(spec, raw)
        if op == "param":
            spec = self.vocabulary.parameters[args]
            raw = self.params.get(args)
            if isinstance(raw, list):
                return raw
            return None if raw is None else _coerce(spec, raw)
        left, right = (self.value(a, facts) for a in args)
        if left is None or right is None:
            return None
        if op == "days_between":
            return (_as_date(right) - _as_date(left)).days + 1
        return {"*": left * right, "+": left + right, "-": left - right}[op]

    def evaluate(self, node: Mapping[str, Any], facts: Mapping[str, Any]) -> bool | None:
        """True, False, or None (unknown)."""
        ((op, args),) = node.items()
        if op == "and":
            return _and([self.evaluate(a, facts) for a in args])
        if op == "or":
            return _or([self.evaluate(a, facts) for a in args])
        if op == "not":
            inner = self.evaluate(args, facts)
            return None if inner is None else not inner
        if op in self.vocabulary.operators:
            return self.vocabulary.operators[op].evaluate(args, facts)
        left = self.value(args[0], facts)
        if left is None:
            return None
        if op == "between":
            low, high = self.value(args[1], facts), self.value(args[2], facts)
            if low is None or high is None:
                return None
            return bool(_comparable_value(left, low) <= left <= _comparable_value(left, high))
        if op == "in":
            options = self.value(args[1], facts) if isinstance(args[1], Mapping) else args[1]
            if options is None:
                return None
            return left in {_comparable_value(left, v) for v in options}
        right = self.value(args[1], facts)
        if right is None:
            return None
        right = _comparable_value(left, right)
        return {
            "==": left == right,
            "!=": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[op]

    # -- explanation: "广告面积 12㎡ ≤ 20㎡"

    def describe_operand(self, node: Any, facts: Mapping[str, Any]) -> str:
        if not isinstance(node, Mapping):
            return _show(node)
        ((op, args),) = node.items()
        if op == "var":
            spec = self.vocabulary.fields[args]
            return f"{spec.label} {_show(facts.get(args), spec.unit)}"
        if op == "param":
            spec = self.vocabulary.parameters[args]
            return _show(self.params.get(args), spec.unit)
        parts = " × " if op == "*" else (" + " if op == "+" else " − ")
        if op == "days_between":
            value = self.value(node, facts)
            return f"期限 {_show(value, '天')}"
        inner = parts.join(self.describe_operand(a, facts) for a in args)
        return f"{inner} = {_show(self.value(node, facts))}"

    def describe(self, node: Mapping[str, Any], facts: Mapping[str, Any]) -> str:
        """A one-line account of what the expression compared, with the values it saw."""
        ((op, args),) = node.items()
        if op in ("and", "or"):
            joiner = "；且 " if op == "and" else "；或 "
            return joiner.join(self.describe(a, facts) for a in args)
        if op == "not":
            return f"非（{self.describe(args, facts)}）"
        if op in self.vocabulary.operators:
            return self.vocabulary.operators[op].describe(args)
        left = self.describe_operand(args[0], facts)
        if op == "between":
            low, high = (self.describe_operand(a, facts) for a in args[1:])
            return f"{left} 在 {low} 至 {high} 之间"
        if op == "in":
            options = self.value(args[1], facts) if isinstance(args[1], Mapping) else args[1]
            return f"{left} 属于 {'、'.join(_show(v) for v in options or [])}"
        return f"{left} {SYMBOLS[op]} {self.describe_operand(args[1], facts)}"


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _comparable_value(like: Any, value: Any) -> Any:
    if isinstance(like, dt.date) and isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


def _show(value: Any, unit: str = "") -> str:
    if value is None:
        return "（无数据）"
    if value is True:
        return "是"
    if value is False:
        return "否"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, float):
        value = round(value, 2)
    return f"{value}{unit}"


def inputs(node: Any) -> tuple[list[str], list[str]]:
    """The fields and the parameters an expression reads, each in first-seen order."""
    fields: list[str] = []
    params: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, Mapping):
            for key, value in item.items():
                if key == "var" and isinstance(value, str):
                    fields.append(value) if value not in fields else None
                elif key == "param" and isinstance(value, str):
                    params.append(value) if value not in params else None
                else:
                    walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)

    walk(node)
    return fields, params
