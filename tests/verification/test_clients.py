"""The verification clients against the emulator over real HTTP: answers, single-use face
tokens, signatures, timeouts and 5xx as typed errors, and nothing personal in the logs."""

from __future__ import annotations

import logging
import time

import pytest
import requests

from tests.verification.conftest import Clock
from verification.bank import ExactNameRule, HttpBankAccountService
from verification.emulator import FACE_TOKEN_TTL_SECONDS, Emulator
from verification.errors import CredentialsRejected, ServiceUnavailable
from verification.identity import HttpIdentityService

APP_ID, SECRET = "yhb-test", "test-identity-secret"
PERSON = ("黄泽海", "440113197805123413")
COMPANY = "广州市番禺区泽海五金制品有限公司"


@pytest.fixture
def emulator(clock: Clock) -> Emulator:
    return Emulator(
        {APP_ID: SECRET},
        people={PERSON[1]: PERSON[0]},
        accounts={"6222020200112233445": COMPANY},
        open_population=False,
        clock=clock,
    )


def _identity(
    base_url: str, secret: str = SECRET, timeout: float = 2.0, clock: Clock | None = None
) -> HttpIdentityService:
    return HttpIdentityService(
        requests.Session(),
        base_url=base_url,
        app_id=APP_ID,
        secret=secret,
        timeout=timeout,
        clock=clock or time.time,
    )


def test_a_listed_person_matches_and_a_namesake_number_does_not(base_url: str) -> None:
    service = _identity(base_url)
    assert service.verify(*PERSON).passed
    assert service.verify(*PERSON).method == "realname_service"
    wrong_name = service.verify("黄泽山", PERSON[1])
    assert (wrong_name.passed, wrong_name.reason) == (False, "mismatch")
    unknown = service.verify("黄泽海", "110101199003074477")
    assert (unknown.passed, unknown.reason) == (False, "not_found")


def test_an_open_population_takes_unlisted_numbers_for_real_people(
    emulator: Emulator, base_url: str
) -> None:
    emulator.open_population = True
    assert _identity(base_url).verify("陈伟", "110101199003074477").passed
    bad_check_digit = _identity(base_url).verify("陈伟", "110101199003074478")
    assert bad_check_digit.reason == "not_found"


def test_a_face_token_is_redeemed_once_and_expires(
    emulator: Emulator, base_url: str, clock: Clock
) -> None:
    service = _identity(base_url, clock=clock)  # signs with the emulator's clock
    token = emulator.face_token(*PERSON)
    result = service.face_result(token)
    assert result.passed and (result.name, result.id_number) == PERSON
    assert result.checked_at.timestamp() == pytest.approx(clock.now, abs=1e-3)
    assert service.face_result(token).reason == "token_invalid"  # single use
    late = emulator.face_token(*PERSON)
    clock.now += FACE_TOKEN_TTL_SECONDS + 1
    assert service.face_result(late).reason == "token_invalid"


def test_a_face_that_is_not_the_numbers_owner_fails(emulator: Emulator, base_url: str) -> None:
    impostor = emulator.face_token("黄泽山", PERSON[1])
    result = _identity(base_url).face_result(impostor)
    assert (result.passed, result.reason) == (False, "face_mismatch")
    refused = _identity(base_url).face_result(emulator.face_token(*PERSON, passed=False))
    assert not refused.passed


def test_a_wrong_secret_is_a_configuration_error(base_url: str) -> None:
    with pytest.raises(CredentialsRejected):
        _identity(base_url, secret="not-the-secret").verify(*PERSON)


def test_a_stale_timestamp_is_refused(emulator: Emulator, base_url: str, clock: Clock) -> None:
    clock.now += 3600  # the service's clock is an hour ahead of ours
    with pytest.raises(CredentialsRejected):
        _identity(base_url).verify(*PERSON)


def test_timeouts_and_5xx_are_service_unavailable(emulator: Emulator, base_url: str) -> None:
    emulator.inject_fault("/v1/identity/verify", delay=0.5)
    with pytest.raises(ServiceUnavailable):
        _identity(base_url, timeout=0.2).verify(*PERSON)
    emulator.inject_fault("/v1/identity/verify", status=502)
    with pytest.raises(ServiceUnavailable) as raised:
        _identity(base_url).verify(*PERSON)
    assert raised.value.transient
    assert _identity(base_url).verify(*PERSON).passed  # the faults were one call each


def test_an_unreachable_service_is_unavailable() -> None:
    with pytest.raises(ServiceUnavailable):
        _identity("http://127.0.0.1:9", timeout=0.5).verify(*PERSON)


def test_nothing_personal_reaches_the_logs(
    emulator: Emulator, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _identity(base_url).verify(*PERSON)
    _bank(base_url).verify(
        registered_name=COMPANY,
        account_name=COMPANY,
        account_number="6222020200112233445",
        bank_name="工商银行番禺支行",
    )
    logged = " ".join(
        [r.getMessage() for r in caplog.records] + [str(r.__dict__) for r in caplog.records]
    )
    for secret_value in (*PERSON, "6222020200112233445", COMPANY):
        assert secret_value not in logged


def _bank(base_url: str) -> HttpBankAccountService:
    return HttpBankAccountService(
        requests.Session(), base_url=base_url, app_id=APP_ID, secret=SECRET, timeout=2.0
    )


def test_the_bank_confirms_the_holder_and_refuses_others(emulator: Emulator, base_url: str) -> None:
    ask = {"registered_name": COMPANY, "account_name": COMPANY, "bank_name": "工商银行番禺支行"}
    held = _bank(base_url).verify(account_number="6222020200112233445", **ask)
    assert (held.matches, held.method) == (True, "bank_service")
    emulator.add_account("6222020200999999999", "攻击者")
    assert _bank(base_url).verify(account_number="6222020200999999999", **ask).reason == (
        "mismatch"
    )
    assert _bank(base_url).verify(account_number="6222000000000000000", **ask).reason == (
        "no_such_account"
    )


def test_another_name_is_refused_without_asking_the_bank(emulator: Emulator, base_url: str) -> None:
    check = _bank(base_url).verify(
        registered_name=COMPANY,
        account_name="攻击者",
        account_number="6222020200112233445",
        bank_name="工商银行番禺支行",
    )
    assert (check.matches, check.reason) == (False, "name_differs")
    assert emulator.calls.get("/v1/bank/account-check", 0) == 0


@pytest.mark.parametrize(
    ("registered", "given", "matches"),
    [
        ("广州市某某（番禺）有限公司", "广州市某某(番禺)有限公司", True),
        ("广州市某某有限公司", " 广州市某某有限公司 ", True),
        ("广州市某某有限公司", "广州市某某贸易有限公司", False),
        ("广州市某某有限公司", "攻击者", False),
    ],
)
def test_the_exact_name_rule(registered: str, given: str, matches: bool) -> None:
    check = ExactNameRule().verify(
        registered_name=registered, account_name=given, account_number="1", bank_name="b"
    )
    assert check.matches is matches and check.method == "exact_name"
