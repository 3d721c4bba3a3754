"""The subscribe-message field rules, one type at a time."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wechat.templates import DEFAULT_TEMPLATES, check_template_data, check_value, field_kind

pytestmark = pytest.mark.slow

han = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
ascii_letters = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
digits = st.sampled_from("0123456789")
visible_text = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")))


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("thing1", "thing"),
        ("number02", "number"),
        ("character_string5", "character_string"),
        ("phone_number9", "phone_number"),
        ("short_thing3", "short_thing"),
        ("letter", "letter"),
        ("site01", None),
        ("Thing1", None),
        ("thing_1", None),
    ],
)
def test_field_kind_is_the_key_without_its_number(key: str, kind: str | None) -> None:
    assert field_kind(key) == kind


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("thing1", "番禺区政务服务中心 3号窗口"),
        ("number2", "12"),
        ("number2", "3.75"),
        ("letter3", "ABCdef"),
        ("symbol4", "#%&"),
        ("character_string5", "A012-2024/05"),
        ("time6", "15:01"),
        ("time6", "2019年10月1日 15:01"),
        ("time6", "2024-05-01 09:30:15"),
        ("time6", "09:00~12:00"),
        ("date7", "2019年10月1日"),
        ("date7", "2024/05/01"),
        ("date7", "2024-05-01 15:01"),
        ("date7", "2024年5月1日~2024年5月3日"),
        ("amount8", "¥100.50"),
        ("amount8", "$3"),
        ("amount8", "100元"),
        ("phone_number9", "+86-0766-66888866"),
        ("car_number10", "粤A8Z888挂"),
        ("car_number10", "粤A12345"),
        ("name11", "陈小明"),
        ("name11", "买买提·艾力"),
        ("name11", "Chen Xiaoming"),
        ("phrase12", "已通过"),
        ("short_thing13", "5号窗"),
        ("enum14", "anything"),
    ],
)
def test_values_wechat_accepts(key: str, value: str) -> None:
    assert check_value(key, value) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("thing1", "这是一个超过二十个字的事项名称用来测试长度限制的"),
        ("thing1", "   "),
        ("number2", "1,000"),
        ("number2", "-5"),
        ("number2", "1" * 33),
        ("letter3", "abc1"),
        ("symbol4", "a!"),
        ("symbol4", "!!!!!!"),
        ("character_string5", "号码A012"),
        ("character_string5", "A 012"),
        ("time6", "25:00"),
        ("time6", "2019年10月1日"),
        ("time6", "明天上午"),
        ("date7", "15:01"),
        ("date7", "2023-02-30"),
        ("amount8", "¥12345678901"),
        ("amount8", "10.123"),
        ("phone_number9", "138 0013 8000"),
        ("phone_number9", "1" * 18),
        ("car_number10", "粤A8Z8888挂"),
        ("car_number10", "A粤8Z888"),
        ("name11", "陈小明陈小明陈小明陈小明"),
        ("name11", "Agent 007"),
        ("phrase12", "审核通过了吗"),
        ("phrase12", "OK"),
        ("short_thing13", "二楼三号窗口"),
        ("site14", "TIT创意园"),
    ],
)
def test_values_wechat_refuses(key: str, value: str) -> None:
    assert check_value(key, value) is not None


def test_enum_values_are_checked_when_the_template_lists_them() -> None:
    assert check_value("enum1", "已受理", choices=("已受理", "已办结")) is None
    assert check_value("enum1", "已驳回", choices=("已受理", "已办结")) is not None


def test_every_bad_field_is_reported_at_once() -> None:
    problems = check_template_data({"thing1": "", "phrase2": "通过", "number3": "x", "time4": "1"})

    assert set(problems) == {"thing1", "number3", "time4"}


def test_default_templates_have_known_field_types() -> None:
    assert set(DEFAULT_TEMPLATES) == {
        "queue_called",
        "queue_near",
        "rating_invite",
        "appointment_booked",
        "appointment_reminder",
        "appointment_cancelled",
        "approval_result",
        "policy_push",
    }
    for spec in DEFAULT_TEMPLATES.values():
        assert all(field_kind(key) for key in spec.fields)


@given(visible_text.filter(lambda s: s.strip()).filter(lambda s: len(s) <= 20))
def test_thing_takes_any_text_up_to_20_characters(value: str) -> None:
    assert check_value("thing1", value) is None


@given(st.text(min_size=21))
def test_thing_refuses_more_than_20_characters(value: str) -> None:
    assert check_value("thing1", value) is not None


@given(st.text(han, min_size=1, max_size=5))
def test_phrase_takes_up_to_five_chinese_characters(value: str) -> None:
    assert check_value("phrase2", value) is None


@given(st.text(han, min_size=6, max_size=12))
def test_phrase_refuses_six_or_more(value: str) -> None:
    assert check_value("phrase2", value) is not None


@given(st.text(han, max_size=4), ascii_letters | digits, st.text(han, max_size=4))
def test_phrase_refuses_anything_but_chinese(before: str, intruder: str, after: str) -> None:
    assert check_value("phrase2", before + intruder + after) is not None


@given(st.text(digits, min_size=1, max_size=16), st.text(digits, max_size=15))
def test_number_takes_digits_with_an_optional_decimal_part(whole: str, fraction: str) -> None:
    value = f"{whole}.{fraction}" if fraction else whole
    assert check_value("number3", value) is None


@given(st.text(ascii_letters | digits | st.sampled_from("-_/#.:"), min_size=1, max_size=32))
def test_character_string_takes_32_letters_digits_and_symbols(value: str) -> None:
    assert check_value("character_string4", value) is None


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_times_and_dates_in_every_documented_shape(moment: datetime) -> None:
    day = f"{moment.year}年{moment.month}月{moment.day}日"
    clock = moment.strftime("%H:%M")
    for shape in (clock, f"{day} {clock}", moment.strftime("%Y-%m-%d %H:%M:%S")):
        assert check_value("time5", shape) is None
    for shape in (day, moment.strftime("%Y/%m/%d"), f"{day} {clock}"):
        assert check_value("date6", shape) is None
    assert check_value("time5", day) is not None
    assert check_value("date6", clock) is not None


@given(
    st.sampled_from(["", "¥", "￥", "$", "€"]),
    st.integers(min_value=0, max_value=9_999_999_999),
    st.one_of(st.none(), st.integers(min_value=0, max_value=99)),
    st.booleans(),
)
def test_amount_takes_a_currency_ten_digits_and_cents(
    currency: str, whole: int, cents: int | None, yuan: bool
) -> None:
    value = (
        currency + str(whole) + ("" if cents is None else f".{cents:02d}") + ("元" if yuan else "")
    )
    assert check_value("amount7", value) is None
    assert check_value("amount7", currency + "1" + str(whole).zfill(10)) is not None
