"""The criteria language's JSON Schema (in the OpenAPI document) against the server's own
validation: whatever the server accepts the schema accepts, and the shapes the schema
refuses the server refuses too."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.policies import criteria as crit
from app.policies import criteria_schema, reference
from app.policies.errors import InvalidCriteria


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable` as JSON Schema's null type; refs into one definitions map."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        out["type"] = [node["type"], "null"]
    if "$ref" in out:
        out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/definitions/")
    return out


DEFINITIONS = _json_schema(criteria_schema.components())
LIST_VALIDATOR = jsonschema_rs.Draft4Validator(
    {**_json_schema(copy.deepcopy(criteria_schema.CRITERIA_LIST)), "definitions": DEFINITIONS}
)


def _server_accepts(criteria: Any) -> bool:
    try:
        crit.parse_criteria(criteria)
    except InvalidCriteria:
        return False
    return True


def _item(rule: Any, **extra: Any) -> list[dict[str, Any]]:
    return [{"label": "条件", "rule": rule, **extra}]


VALID = [
    {"has_tag": "高新技术企业"},
    {"industry_prefix": "C"},
    {"industry_prefix": ["h61", "I65"]},
    {"==": [{"var": "town"}, "市桥街"]},
    {">=": [{"var": "employees"}, 10]},
    {"between": [{"var": "established_on"}, "2020-01-01", "2024-12-31"]},
    {"in": [{"var": "size_class"}, ["small", "micro"]]},
    {"not": {"has_tag": "高新技术企业"}},
    {"not": [{"has_tag": "高新技术企业"}]},
    {"and": [{"or": [{"industry_prefix": ["C"]}, {"<": [{"var": "revenue_yuan"}, 5]}]}]},
]

SHAPE_INVALID = [
    {},
    {"and": []},
    {"and": {"has_tag": "高新技术企业"}},
    {"has_tag": "不存在的标签"},
    {"eval": "1"},
    {"==": [{"var": "town"}]},
    {"==": [{"var": "password"}, "x"]},
    {"==": [{"var": ["town"]}, "x"]},
    {"between": [{"var": "employees"}, 1]},
    {"in": [{"var": "town"}, []]},
    {"industry_prefix": []},
    {"industry_prefix": [1]},
    {"has_tag": "高新技术企业", "not": {"has_tag": "高新技术企业"}},
    {">": [{"var": "employees"}, -1]},
    {">": [{"var": "employees"}, True]},
]


@pytest.mark.parametrize("rule", VALID)
def test_valid_rules_pass_both(rule: Any) -> None:
    assert _server_accepts(_item(rule))
    assert LIST_VALIDATOR.is_valid(_item(rule))


@pytest.mark.parametrize("rule", SHAPE_INVALID)
def test_misshapen_rules_fail_both(rule: Any) -> None:
    assert not _server_accepts(_item(rule))
    assert not LIST_VALIDATOR.is_valid(_item(rule))


@pytest.mark.parametrize(
    "extra",
    [{"hint": 0}, {"facts": False}, {"facts": "sometimes"}, {"source": []}, {"id": 7}, {"x": 1}],
)
def test_misshapen_criterion_fields_fail_both(extra: dict[str, Any]) -> None:
    criteria = _item({"has_tag": "高新技术企业"}, **extra)
    assert not _server_accepts(criteria)
    assert not LIST_VALIDATOR.is_valid(criteria)


def test_optional_fields_may_be_null_in_both() -> None:
    criteria = _item(
        {"has_tag": "高新技术企业"}, id=None, hint=None, facts=None, source={"doc": None}
    )
    assert _server_accepts(criteria) and LIST_VALIDATOR.is_valid(criteria)


# Random trees built from the language's own pieces, well-formed or not.
_fields = st.sampled_from([*sorted(crit.FIELDS), "password"])
_values = st.one_of(
    st.sampled_from(["市桥街", "small", "C", "2020-01-01", "x"]),
    st.integers(-5, 10**15 + 5),
    st.booleans(),
    st.none(),
)
_var = st.one_of(st.builds(lambda f: {"var": f}, _fields), _values)
_leaf = st.one_of(
    st.builds(lambda op, a, b: {op: [a, b]}, st.sampled_from(crit.COMPARISONS), _var, _values),
    st.builds(lambda a, b, c: {"between": [a, b, c]}, _var, _values, _values),
    st.builds(lambda a, vs: {"in": [a, vs]}, _var, st.lists(_values, max_size=3)),
    st.builds(
        lambda p: {"industry_prefix": p},
        st.one_of(
            st.sampled_from(["C", "h61", "Z99"]),
            st.lists(st.sampled_from(["C", "I65", 3]), max_size=2),
        ),
    ),
    st.builds(lambda t: {"has_tag": t}, st.sampled_from([*reference.TAGS[:3], "无此标签", 1])),
)
_trees = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.builds(lambda xs: {"and": xs}, st.lists(inner, max_size=3)),
        st.builds(lambda xs: {"or": xs}, st.lists(inner, max_size=3)),
        st.builds(lambda x: {"not": x}, inner),
        st.builds(lambda x: {"not": [x]}, inner),
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trees)
def test_the_schema_is_never_stricter_than_the_server(rule: Any) -> None:
    criteria = _item(rule)
    if _server_accepts(criteria):  # so whatever the schema refuses, the server refuses
        assert LIST_VALIDATOR.is_valid(criteria), rule
