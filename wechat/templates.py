"""Subscribe-message templates: the value rules per field type and the demo templates.

A field key is its type followed by a number (`thing1`, `number02`, `character_string5`).
WeChat refuses a whole message with 47003 when one value breaks its type's rule, so the
client checks every field before sending and the emulator applies the same rules.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date

Rule = Callable[[str], str | None]

_ASCII_LETTERS = frozenset(string.ascii_letters)
_ASCII_DIGITS = frozenset(string.digits)
_PHONE_CHARS = frozenset(string.digits + "+-")
_NAME_DOTS = frozenset("·•")
_KEY = re.compile(r"([a-z]+(?:_[a-z]+)*)([0-9]*)")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_AMOUNT = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,2})?元?")
_DATE_FORMS = (
    re.compile(r"([0-9]{4})年([0-9]{1,2})月([0-9]{1,2})日"),
    re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"),
    re.compile(r"([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})"),
)
_TIME_FORM = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")


def is_han(char: str) -> bool:
    """Tell whether a character is a Chinese (Han) ideograph."""
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x3134F
        or char == "〇"
    )


def is_symbol(char: str) -> bool:
    """Tell whether a character is punctuation or a symbol (Unicode categories P* and S*)."""
    return unicodedata.category(char)[0] in "PS"


def _too_long(value: str, limit: int) -> str | None:
    return f"longer than {limit} characters" if len(value) > limit else None


def _thing(value: str) -> str | None:
    return _too_long(value, 20)


def _short_thing(value: str) -> str | None:
    return _too_long(value, 5)


def _number(value: str) -> str | None:
    if len(value) > 32:
        return "longer than 32 characters"
    if not _NUMBER.fullmatch(value):
        return "only digits, optionally with a decimal part"
    return None


def _letter(value: str) -> str | None:
    if len(value) > 32:
        return "longer than 32 characters"
    if not all(c in _ASCII_LETTERS for c in value):
        return "only letters"
    return None


def _symbol(value: str) -> str | None:
    if len(value) > 5:
        return "longer than 5 characters"
    if not all(is_symbol(c) for c in value):
        return "only symbols"
    return None


def _character_string(value: str) -> str | None:
    if len(value) > 32:
        return "longer than 32 characters"
    if not all(c in _ASCII_LETTERS or c in _ASCII_DIGITS or is_symbol(c) for c in value):
        return "only digits, letters and symbols"
    return None


def _moment(text: str) -> tuple[bool, bool] | None:
    """Parse one point in time; answer (has_date, has_time), or None if it is malformed."""
    text = text.strip()
    for form in _DATE_FORMS:
        matched = form.match(text)
        if matched is None:
            continue
        year, month, day = (int(part) for part in matched.groups())
        try:
            date(year, month, day)
        except ValueError:
            return None
        rest = text[matched.end() :].strip()
        if not rest:
            return True, False
        return (True, True) if _valid_time(rest) else None
    return (False, True) if _valid_time(text) else None


def _valid_time(text: str) -> bool:
    matched = _TIME_FORM.fullmatch(text)
    if matched is None:
        return False
    hour, minute, second = matched.groups()
    return int(hour) < 24 and int(minute) < 60 and (second is None or int(second) < 60)


def _moments(value: str, *, need_date: bool, need_time: bool) -> bool:
    # A period is two points joined by "~", e.g. "15:01~16:00".
    parts = value.split("~")
    if len(parts) > 2:
        return False
    for part in parts:
        parsed = _moment(part)
        if parsed is None:
            return False
        has_date, has_time = parsed
        if (need_date and not has_date) or (need_time and not has_time):
            return False
    return True


def _time(value: str) -> str | None:
    if _moments(value, need_date=False, need_time=True):
        return None
    return "a 24-hour time such as 15:01, optionally after a date, or a period joined by ~"


def _date(value: str) -> str | None:
    if _moments(value, need_date=True, need_time=False):
        return None
    return "a date such as 2019年10月1日 or 2019-10-01, optionally with a time, or a period"


def _amount(value: str) -> str | None:
    body = value[1:] if unicodedata.category(value[0]) == "Sc" else value
    if not _AMOUNT.fullmatch(body):
        return "an optional currency sign, at most 10 digits and 2 decimals, optionally 元"
    return None


def _phone_number(value: str) -> str | None:
    if len(value) > 17:
        return "longer than 17 characters"
    if not all(c in _PHONE_CHARS for c in value) or not any(c in _ASCII_DIGITS for c in value):
        return "only digits, + and -"
    return None


def _car_number(value: str) -> str | None:
    if len(value) > 8:
        return "longer than 8 characters"
    # Only the first and last characters may be Chinese: 粤A8Z888挂.
    for position, char in enumerate(value):
        edge = position in (0, len(value) - 1)
        if not (char in _ASCII_LETTERS or char in _ASCII_DIGITS or (edge and is_han(char))):
            return "letters and digits; only the first and last may be Chinese"
    return None


def _name(value: str) -> str | None:
    if any(is_han(c) for c in value):
        # Chinese mixed with letters counts as a Chinese name.
        if len(value) > 10:
            return "a Chinese name longer than 10 characters"
        if not all(is_han(c) or c in _ASCII_LETTERS or c in _NAME_DOTS for c in value):
            return "only Chinese characters and letters"
        return None
    if len(value) > 20:
        return "a name in letters longer than 20 characters"
    if not all(c in _ASCII_LETTERS or c == " " or is_symbol(c) for c in value):
        return "only Chinese characters, or letters and symbols"
    if not any(c in _ASCII_LETTERS for c in value):
        return "no letters"
    return None


def _phrase(value: str) -> str | None:
    if len(value) > 5:
        return "longer than 5 characters"
    if not all(is_han(c) for c in value):
        return "only Chinese characters"
    return None


def _enum(value: str) -> str | None:
    # The allowed values belong to the template; `check_template_data` checks them when known.
    return None


RULES: Mapping[str, Rule] = {
    "thing": _thing,
    "short_thing": _short_thing,
    "number": _number,
    "letter": _letter,
    "symbol": _symbol,
    "character_string": _character_string,
    "time": _time,
    "date": _date,
    "amount": _amount,
    "phone_number": _phone_number,
    "car_number": _car_number,
    "name": _name,
    "phrase": _phrase,
    "enum": _enum,
}


def field_kind(key: str) -> str | None:
    """Return the type of a template field key (`character_string5` -> `character_string`)."""
    matched = _KEY.fullmatch(key)
    if matched is None or matched.group(1) not in RULES:
        return None
    return matched.group(1)


def check_value(key: str, value: object, *, choices: Collection[str] | None = None) -> str | None:
    """Say why WeChat would refuse this value for this field key, or None if it is fine."""
    kind = field_kind(key)
    if kind is None:
        return "unknown field type"
    if not isinstance(value, str):
        return "not a string"
    if not value.strip():
        return "empty"
    if kind == "enum" and choices is not None and value not in choices:
        return "not one of the template's enum values"
    return RULES[kind](value)


def check_template_data(
    data: Mapping[str, object], *, enums: Mapping[str, Collection[str]] | None = None
) -> dict[str, str]:
    """Check every field of a message; return {key: reason} for each one WeChat would refuse."""
    enums = enums or {}
    problems: dict[str, str] = {}
    for key, value in data.items():
        reason = check_value(key, value, choices=enums.get(key))
        if reason is not None:
            problems[key] = reason
    return problems


@dataclass(frozen=True)
class TemplateSpec:
    """A subscribe-message template as configured in the mini-program's admin console."""

    id: str
    title: str
    # Field key -> the label shown to the user, in display order.
    fields: Mapping[str, str]
    # Long-term templates (granted to government and public services) need no per-send grant.
    long_term: bool = False
    enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


DEFAULT_TEMPLATES: Mapping[str, TemplateSpec] = {
    spec.id: spec
    for spec in (
        TemplateSpec(
            id="queue_called",
            title="排队叫号提醒",
            fields={
                "character_string1": "排队号码",
                "thing2": "办事大厅",
                "thing3": "办理窗口",
                "time4": "叫号时间",
            },
        ),
        TemplateSpec(
            id="queue_near",
            title="排队即将到号提醒",
            fields={
                "character_string1": "排队号码",
                "number2": "前方等待人数",
                "thing3": "办事大厅",
            },
        ),
        TemplateSpec(
            id="appointment_booked",
            title="预约成功通知",
            fields={
                "thing1": "预约事项",
                "thing2": "办事大厅",
                "time3": "预约时间",
                "character_string4": "预约编号",
            },
        ),
        TemplateSpec(
            id="appointment_reminder",
            title="预约到期提醒",
            fields={
                "thing1": "预约事项",
                "thing2": "办事大厅",
                "time3": "预约时间",
                "thing4": "温馨提示",
            },
        ),
        TemplateSpec(
            id="appointment_cancelled",
            title="预约取消通知",
            fields={
                "thing1": "预约事项",
                "thing2": "办事大厅",
                "time3": "预约时间",
                "thing4": "取消原因",
            },
        ),
        TemplateSpec(
            id="rating_invite",
            title="服务评价邀请",
            fields={
                "thing1": "办理事项",
                "thing2": "办事大厅",
                "time3": "办结时间",
                "thing4": "温馨提示",
            },
        ),
        TemplateSpec(
            id="approval_result",
            title="审批结果通知",
            fields={
                "thing1": "办理事项",
                "phrase2": "审批结果",
                "time3": "办结时间",
                "thing4": "备注",
            },
        ),
        TemplateSpec(
            id="policy_push",
            title="政策推送提醒",
            fields={
                "thing1": "政策名称",
                "thing2": "发布部门",
                "thing3": "有效期",
                "thing4": "政策摘要",
            },
        ),
    )
}
