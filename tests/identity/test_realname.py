"""Real-name verification: checked, unique per person, sealed at rest, masked when shown."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEntry
from app.calendar import local_day
from app.db import utcnow
from app.identity import realname
from app.identity.errors import IdNumberInvalid
from app.identity.models import User
from app.identity.verifiers import IdentityCheck
from app.security.crypto import FieldCipher
from tests.factories.identity import id_number_for

REALNAME = "/api/v1/me/realname"
NAME = "陈美玲"
ID_NUMBER = id_number_for(dt.date(1990, 1, 1), order=123)  # born before 440113 existed


def _with_check_digit_x() -> str:
    for order in range(1000):
        number = id_number_for(dt.date(1985, 6, 15), order=order)
        if number.endswith("X"):
            return number
    raise AssertionError("no order gives an X check digit")


def _bad_check_digit(number: str) -> str:
    digits = "0123456789X"
    return number[:-1] + digits[(digits.index(number[-1]) + 1) % 11]


def _post(client: FlaskClient, headers: dict[str, str], **body: str) -> Any:
    return client.post(REALNAME, json=body, headers=headers)


@pytest.fixture
def citizen(
    create_user: Callable[..., User], citizen_headers: Callable[[User], dict[str, str]]
) -> tuple[User, dict[str, str]]:
    user = create_user()
    return user, citizen_headers(user)


def _nothing_written(session: Session, user: User) -> bool:
    session.refresh(user)
    return (
        user.real_name_sealed is None
        and user.id_number_sealed is None
        and user.id_number_index is None
        and user.birth_date is None
        and user.realname_verified_at is None
    )


def test_a_valid_identity_is_verified_sealed_and_shown_masked(
    client: FlaskClient,
    session: Session,
    field_cipher: FieldCipher,
    citizen: tuple[User, dict[str, str]],
) -> None:
    user, headers = citizen

    response = _post(client, headers, name=NAME, id_number=ID_NUMBER)

    assert response.status_code == 200
    shown = response.json["realname"]
    assert shown["verified"] is True
    assert shown["name"] == "*美玲"
    assert shown["id_number"] == ID_NUMBER[:4] + "*" * 10 + ID_NUMBER[-4:]
    assert shown["method"] == "realname_service"  # the emulated real-name service, over HTTP
    assert response.json["identity_level"] == "verified"
    text = response.get_data(as_text=True)
    assert NAME not in text and ID_NUMBER not in text
    assert client.get("/api/v1/me", headers=headers).json["realname"] == shown

    session.refresh(user)
    assert user.birth_date == dt.date(1990, 1, 1)
    assert user.realname_method == "realname_service" and user.realname_verified_at is not None
    assert NAME not in (user.real_name_sealed or "")
    assert ID_NUMBER not in (user.id_number_sealed or "")
    assert realname.real_name_of(field_cipher, user) == NAME
    assert realname.id_number_of(field_cipher, user) == ID_NUMBER
    [entry] = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "user.realname_verified")
    )
    assert entry.actor_id == user.id
    assert entry.details == {"method": "realname_service"}


def test_a_lower_case_x_is_stored_upper_case(
    session: Session,
    field_cipher: FieldCipher,
    client: FlaskClient,
    citizen: tuple[User, dict[str, str]],
) -> None:
    user, headers = citizen
    number = _with_check_digit_x()

    response = _post(client, headers, name="欧阳小明", id_number=number.lower())

    assert response.status_code == 200
    assert response.json["realname"]["id_number"].endswith("X")
    session.refresh(user)
    assert realname.id_number_of(field_cipher, user) == number


@pytest.mark.parametrize(
    ("id_number", "why"),
    [
        (_bad_check_digit(ID_NUMBER), "check digit"),
        (_bad_check_digit(_with_check_digit_x()), "a digit where X belongs"),
        ("44011319900101123", "too short"),
        ("44011319900101123A", "letter"),
    ],
    ids=["bad-check-digit", "bad-check-x", "17-digits", "letter"],
)
def test_a_malformed_id_number_is_refused_with_its_field(
    client: FlaskClient,
    session: Session,
    citizen: tuple[User, dict[str, str]],
    id_number: str,
    why: str,
) -> None:
    user, headers = citizen

    response = _post(client, headers, name=NAME, id_number=id_number)

    assert response.status_code == 422, why
    assert response.json["code"] == "ID_NUMBER_INVALID"
    assert list(response.json["details"]["fields"]) == ["id_number"]
    assert _nothing_written(session, user)


def _sign(body: str) -> str:
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    check = (12 - sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11) % 11
    return body + ("X" if check == 10 else str(check))


@pytest.mark.parametrize(
    "birth",
    ["19900230", "19901301", "18991231", "21000101"],
    ids=["feb-30", "month-13", "before-1900", "in-the-future"],
)
def test_an_id_number_with_an_impossible_birth_date_is_refused(
    client: FlaskClient, session: Session, citizen: tuple[User, dict[str, str]], birth: str
) -> None:
    user, headers = citizen

    response = _post(client, headers, name=NAME, id_number=_sign("440113" + birth + "123"))

    assert response.status_code == 422
    assert response.json["code"] == "ID_NUMBER_INVALID"
    assert "出生日期" in response.json["details"]["fields"]["id_number"][0]
    assert _nothing_written(session, user)


def test_tomorrow_in_china_is_still_the_future() -> None:
    now = dt.datetime(2026, 3, 1, 15, 59, tzinfo=dt.UTC)  # 23:59 in Beijing
    tomorrow = _sign("440113" + "20260302" + "123")
    today = _sign("440113" + "20260301" + "123")

    assert realname.normalize_id_number(today, today=local_day(now))
    with pytest.raises(IdNumberInvalid):
        realname.normalize_id_number(tomorrow, today=local_day(now))


@pytest.mark.parametrize(
    "name",
    ["张", "Zhang San", "张三1", "·张三", "张三·", "张··三", "张" * 31, "  "],
)
def test_a_name_that_is_not_a_chinese_name_is_refused(
    client: FlaskClient, session: Session, citizen: tuple[User, dict[str, str]], name: str
) -> None:
    user, headers = citizen

    response = _post(client, headers, name=name, id_number=ID_NUMBER)

    assert response.status_code == 422
    assert response.json["code"] == "NAME_INVALID"
    assert list(response.json["details"]["fields"]) == ["name"]
    assert _nothing_written(session, user)


def test_names_of_ethnic_minorities_keep_their_middle_dot(
    client: FlaskClient,
    session: Session,
    field_cipher: FieldCipher,
    citizen: tuple[User, dict[str, str]],
) -> None:
    user, headers = citizen

    response = _post(client, headers, name="阿依古丽•买买提", id_number=ID_NUMBER)

    assert response.status_code == 200
    session.refresh(user)
    assert realname.real_name_of(field_cipher, user) == "阿依古丽·买买提"


def test_an_id_number_verified_by_another_account_is_refused(
    client: FlaskClient,
    session: Session,
    create_verified_user: Callable[..., User],
    citizen: tuple[User, dict[str, str]],
) -> None:
    create_verified_user(name=NAME, id_number=ID_NUMBER)
    user, headers = citizen

    response = _post(client, headers, name=NAME, id_number=ID_NUMBER)

    assert response.status_code == 409
    assert response.json["code"] == "ID_NUMBER_TAKEN"
    assert _nothing_written(session, user)


def test_a_verified_account_cannot_change_identity_but_may_repeat_it(
    client: FlaskClient, citizen: tuple[User, dict[str, str]]
) -> None:
    _, headers = citizen
    assert _post(client, headers, name=NAME, id_number=ID_NUMBER).status_code == 200

    repeat = _post(client, headers, name=NAME, id_number=ID_NUMBER)
    other = _post(client, headers, name="陈美丽", id_number=ID_NUMBER)
    another = _post(client, headers, name=NAME, id_number=id_number_for(order=124))

    assert repeat.status_code == 200
    assert (other.status_code, other.json["code"]) == (409, "REALNAME_ALREADY_VERIFIED")
    assert (another.status_code, another.json["code"]) == (409, "REALNAME_ALREADY_VERIFIED")


class _RefusingVerifier:
    def verify(self, name: str, id_number: str) -> IdentityCheck:
        return IdentityCheck(passed=False, method="face", reason="mismatch")


def test_a_verifier_refusal_is_audited_and_writes_nothing_else(
    app: Flask,
    client: FlaskClient,
    session: Session,
    citizen: tuple[User, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(app.extensions, "identity_verifier", _RefusingVerifier())
    user, headers = citizen

    response = _post(client, headers, name=NAME, id_number=ID_NUMBER)
    # Requests share the test's session: undo what a failed request leaves uncommitted.
    session.rollback()

    assert response.status_code == 422
    assert response.json["code"] == "REALNAME_REJECTED"
    assert _nothing_written(session, user)
    [entry] = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "user.realname_rejected")
    )
    assert entry.details == {"method": "face", "reason": "mismatch"}


def test_masked_identity_of_an_unverified_user_shows_nothing(
    field_cipher: FieldCipher, create_user: Callable[..., User]
) -> None:
    user = create_user()

    assert realname.masked_identity(field_cipher, user) == {
        "verified": False,
        "name": None,
        "id_number": None,
        "verified_at": None,
        "method": None,
        "face_verified_at": None,
    }
    assert realname.real_name_of(field_cipher, user) is None


def test_the_service_checks_the_id_before_anything_else(
    session: Session, field_cipher: FieldCipher, create_user: Callable[..., User]
) -> None:
    user = create_user()

    class _MustNotBeCalled:
        def verify(self, name: str, id_number: str) -> IdentityCheck:
            raise AssertionError("verifier called for an invalid number")

    with pytest.raises(IdNumberInvalid):
        realname.verify_real_name(
            session,
            field_cipher,
            _MustNotBeCalled(),
            user,
            name=NAME,
            id_number=_bad_check_digit(ID_NUMBER),
            now=utcnow(),
        )
