"""Criteria: validation, three-valued semantics, and the SQL and Python paths in agreement."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from app.policies import criteria as crit
from app.policies import reference
from app.policies.errors import InvalidCriteria
from app.policies.matching import COLUMNS
from app.policies.models import EnterpriseProfile

BASE = {
    "industry_code": "H6210",
    "town": "市桥街",
    "size_class": "small",
    "established_on": dt.date(2018, 5, 1),
    "employees": 20,
    "revenue_yuan": 3_000_000,
    "tag_bits": reference.tags_to_bits(["出口企业"]),
}


def ev(rule: dict[str, Any], **changes: Any) -> bool | None:
    return crit.evaluate(crit.validate(rule), {**BASE, **changes})


def test_each_operator_alone_with_inclusive_boundaries() -> None:
    assert ev({"industry_prefix": ["H62"]}) is True
    assert ev({"industry_prefix": ["H61", "C"]}) is False
    assert ev({"has_tag": "出口企业"}) is True
    assert ev({"has_tag": "高新技术企业"}) is False
    assert ev({"in": [{"var": "town"}, ["市桥街", "沙湾街"]]}) is True
    assert ev({"between": [{"var": "employees"}, 20, 50]}) is True  # inclusive low
    assert ev({"between": [{"var": "employees"}, 1, 20]}) is True  # inclusive high
    assert ev({"between": [{"var": "employees"}, 21, 50]}) is False
    assert ev({"<=": [{"var": "established_on"}, "2018-05-01"]}) is True
    assert ev({"<": [{"var": "established_on"}, "2018-05-01"]}) is False
    assert ev({"!=": [{"var": "size_class"}, "micro"]}) is True


def test_unknown_data_gives_unknown_and_kleene_logic() -> None:
    assert ev({">=": [{"var": "employees"}, 10]}, employees=None) is None
    assert ev({"has_tag": "出口企业"}, tag_bits=None) is None
    # false AND unknown is false; true OR unknown is true; NOT unknown is unknown.
    unknown = {"has_tag": "出口企业"}
    assert ev({"and": [{"industry_prefix": ["C"]}, unknown]}, tag_bits=None) is False
    assert ev({"or": [{"industry_prefix": ["H"]}, unknown]}, tag_bits=None) is True
    assert ev({"not": unknown}, tag_bits=None) is None


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"industry_prefix": ["Z99"]}, "rule.industry_prefix[0]"),
        ({"industry_prefix": ["C62"]}, "rule.industry_prefix[0]"),  # 62 is not manufacturing
        ({"between": [{"var": "employees"}, 50, 10]}, "rule"),
        ({"in": [{"var": "town"}, []]}, "rule"),
        ({"has_tag": "不存在的标签"}, "rule"),
        ({"eval": "__import__('os')"}, "rule"),
        ({"<": [{"var": "town"}, "市桥街"]}, "rule"),
        ({"==": [{"var": "password"}, "x"]}, "rule.==[0]"),
        # A field name that is no text (a list cannot be looked up in a set: was a 500).
        ({"==": [{"var": ["town"]}, "x"]}, "rule.==[0]"),
        ({"has_tag": ["高新技术企业"]}, "rule"),
    ],
)
def test_malformed_rules_are_refused_naming_the_field(rule: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidCriteria) as error:
        crit.validate(rule)
    assert error.value.details["field"] == field


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"label": "x", "rule": {"has_tag": "高新技术企业"}, "hint": 0}, "criteria[0].hint"),
        ({"label": "x", "rule": {"has_tag": "高新技术企业"}, "facts": False}, "criteria[0].facts"),
        ({"label": "x", "rule": {"has_tag": "高新技术企业"}, "source": []}, "criteria[0].source"),
        ({"label": "x", "rule": {"has_tag": "高新技术企业"}, "id": 0}, "criteria[0].id"),
    ],
)
def test_optional_criterion_fields_have_their_types_or_are_absent(
    item: dict[str, Any], field: str
) -> None:
    # Falsy values of another type were taken as "absent"; the OpenAPI schema says they are not.
    with pytest.raises(InvalidCriteria) as error:
        crit.parse_criteria([item])
    assert error.value.details["field"] == field


def test_structured_form_refuses_contradictions() -> None:
    with pytest.raises(InvalidCriteria) as error:
        crit.from_structured({"industry_include": ["H62"], "industry_exclude": ["H"]}, doc="x")
    assert "矛盾" in error.value.message
    with pytest.raises(InvalidCriteria):
        crit.from_structured({"tags_all": ["专精特新"], "tags_none": ["专精特新"]}, doc="x")
    with pytest.raises(InvalidCriteria):
        crit.from_structured({"employees_min": 10, "employees_max": 5}, doc="x")
    with pytest.raises(InvalidCriteria):
        crit.from_structured(
            {"established_after": "2020-01-01", "established_before": "2019-01-01"}, doc="x"
        )


def test_structured_form_labels_and_sources() -> None:
    criteria = crit.from_structured(
        {"tags_all": ["高新技术企业"], "size_classes": ["small", "micro"], "article": "第三条"},
        doc="番科〔2024〕1号",
    )
    labels = [c.label for c in criteria]
    assert "小型或微型企业" in labels and "具有高新技术企业资质" in labels
    assert all(c.doc == "番科〔2024〕1号" and c.article == "第三条" for c in criteria)
    tag = next(c for c in criteria if c.rule == {"has_tag": "高新技术企业"})
    assert tag.hint == "若取得高新技术企业认定即可申报"


def test_size_classes_follow_the_national_thresholds() -> None:
    size = reference.size_class
    assert size("C3872", 1000, 400_000_000) is reference.SizeClass.LARGE
    assert size("C3872", 300, 20_000_000) is reference.SizeClass.MEDIUM
    assert size("C3872", 300, 19_999_999) is reference.SizeClass.SMALL  # both bounds needed
    assert size("C3872", 19, 900_000_000) is reference.SizeClass.MICRO
    assert size("F5211", 9, None) is reference.SizeClass.MICRO  # one low figure decides micro
    assert size("F5211", 50, None) is None  # otherwise unknown
    assert size("H6210", 100, 20_000_000) is reference.SizeClass.MEDIUM
    assert size("I6513", 10, 500_000) is reference.SizeClass.SMALL


# -- the agreement test ------------------------------------------------------------------------

CODES = ["C3872", "C2438", "H6210", "H6110", "F5211", "I6513", None]
DATES = [dt.date(2010, 1, 1), dt.date(2018, 5, 1), dt.date(2023, 12, 31), None]

profiles_st = st.fixed_dictionaries(
    {
        "industry_code": st.sampled_from(CODES),
        "town": st.sampled_from([*reference.TOWNS[:4], None]),
        "size_class": st.sampled_from(["large", "medium", "small", "micro", None]),
        "established_on": st.sampled_from(DATES),
        "employees": st.one_of(st.none(), st.integers(0, 400)),
        "revenue_yuan": st.one_of(st.none(), st.integers(0, 50_000_000)),
        "tag_bits": st.one_of(st.none(), st.integers(0, 2 ** len(reference.TAGS) - 1)),
    }
)


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    num = st.sampled_from(["employees", "revenue_yuan"])
    prefixes = st.lists(
        st.sampled_from(["C", "C38", "H", "H62", "F5211", "I"]), min_size=1, max_size=3
    )
    towns = st.lists(st.sampled_from(reference.TOWNS[:4]), min_size=1, max_size=3)
    sizes = st.lists(st.sampled_from(["large", "medium", "small", "micro"]), min_size=1)
    ops = st.sampled_from(crit.COMPARISONS)
    return st.one_of(
        st.builds(lambda p: {"industry_prefix": p}, prefixes),
        st.builds(lambda t: {"has_tag": t}, st.sampled_from(reference.TAGS)),
        st.builds(lambda ts: {"in": [{"var": "town"}, ts]}, towns),
        st.builds(lambda s: {"in": [{"var": "size_class"}, s]}, sizes),
        st.builds(lambda op, f, v: {op: [{"var": f}, v]}, ops, num, st.integers(0, 300)),
        st.builds(
            lambda op, d: {op: [{"var": "established_on"}, d.isoformat()]},
            ops,
            st.sampled_from(DATES[:3]),
        ),
        st.builds(
            lambda a, b: {"between": [{"var": "employees"}, min(a, b), max(a, b)]},
            st.integers(0, 300),
            st.integers(0, 300),
        ),
    )


rules_st = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"and": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"or": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, inner),
    ),
    max_leaves=6,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rules=st.lists(rules_st, min_size=1, max_size=3),
    people=st.lists(profiles_st, min_size=1, max_size=8),
)
def test_sql_and_python_agree(
    session: Session,
    create_registry_enterprise: Any,
    rules: list[dict[str, Any]],
    people: list[dict[str, Any]],
) -> None:
    criteria = crit.parse_criteria([{"label": f"条件{i}", "rule": r} for i, r in enumerate(rules)])
    with session.begin_nested() as savepoint:
        ids = []
        for values in people:
            enterprise = create_registry_enterprise()
            ids.append(enterprise.id)
            session.execute(
                insert(EnterpriseProfile),
                [{"enterprise_id": enterprise.id, "updated_at": dt.datetime.now(dt.UTC), **values}],
            )
        sql = dict(
            session.execute(
                select(EnterpriseProfile.enterprise_id, crit.results_sql(criteria, COLUMNS)).where(
                    EnterpriseProfile.enterprise_id.in_(ids)
                )
            ).all()
        )
        for enterprise_id, values in zip(ids, people, strict=True):
            python = crit.results_string(crit.evaluate_all(criteria, values))
            assert sql[enterprise_id] == python, (rules, values)
        session.execute(delete(EnterpriseProfile).where(EnterpriseProfile.enterprise_id.in_(ids)))
        savepoint.rollback()
