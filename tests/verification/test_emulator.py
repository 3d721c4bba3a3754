"""The emulator's development endpoints over HTTP, as the dev bench and the phone use them, and
the answers outside the happy path that the clients must turn into typed errors."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from verification.bank import HttpBankAccountService
from verification.emulator import Emulator, main
from verification.errors import RequestInvalid, ServiceUnavailable, UnexpectedAnswer
from verification.identity import HttpIdentityService

APP_ID, SECRET = "yhb-test", "test-identity-secret"
PERSON = ("黄泽海", "440113197805123413")
COMPANY = "广州市番禺区泽海五金制品有限公司"


@pytest.fixture
def emulator() -> Emulator:
    return Emulator({APP_ID: SECRET}, open_population=False)


def _identity(base_url: str, timeout: float = 2.0) -> HttpIdentityService:
    return HttpIdentityService(
        requests.Session(), base_url=base_url, app_id=APP_ID, secret=SECRET, timeout=timeout
    )


def _bank(base_url: str) -> HttpBankAccountService:
    return HttpBankAccountService(
        requests.Session(), base_url=base_url, app_id=APP_ID, secret=SECRET, timeout=2.0
    )


def _dev(base_url: str, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(base_url + path, json=body, timeout=2.0)


def test_people_added_over_http_verify_only_with_their_name(base_url: str) -> None:
    assert _identity(base_url).verify(*PERSON).reason == "not_found"  # a closed population
    added = _dev(base_url, "/dev/people", {"name": PERSON[0], "id_number": PERSON[1]})
    assert added.status_code == 200
    assert _identity(base_url).verify(*PERSON).passed
    assert _identity(base_url).verify("黄泽山", PERSON[1]).reason == "mismatch"


def test_a_face_token_from_the_dev_endpoint_is_redeemed_once(
    emulator: Emulator, base_url: str
) -> None:
    emulator.add_person(*PERSON)
    answer = _dev(
        base_url, "/dev/face/token", {"name": PERSON[0], "id_number": PERSON[1], "passed": True}
    )
    token = answer.json()["verify_token"]
    result = _identity(base_url).face_result(token)
    assert result.passed and (result.name, result.id_number) == PERSON
    assert result.checked_at.utcoffset() is not None
    assert _identity(base_url).face_result(token).reason == "token_invalid"


def test_the_face_check_does_not_show_personal_data_in_its_repr(
    emulator: Emulator, base_url: str
) -> None:
    emulator.add_person(*PERSON)
    result = _identity(base_url).face_result(emulator.face_token(*PERSON))
    assert PERSON[0] not in repr(result) and PERSON[1] not in repr(result)


def test_accounts_added_over_http_match_only_their_holder(base_url: str) -> None:
    ask = {"registered_name": COMPANY, "account_name": COMPANY, "bank_name": "工商银行番禺支行"}
    added = _dev(
        base_url, "/dev/accounts", {"account_number": "6222020200112233445", "holder_name": "他人"}
    )
    assert added.status_code == 200
    assert _bank(base_url).verify(account_number="6222020200112233445", **ask).reason == "mismatch"


def test_an_open_population_holds_unlisted_accounts_under_the_name_asked(
    emulator: Emulator, base_url: str
) -> None:
    emulator.open_population = True
    check = _bank(base_url).verify(
        registered_name=COMPANY,
        account_name=COMPANY,
        account_number="6222000000000000000",
        bank_name="工商银行番禺支行",
    )
    assert (check.matches, check.method) == (True, "bank_service")


@pytest.mark.parametrize(
    "id_number",
    [
        "11010119900307447",  # 17 characters
        "1101011990030744Z7",  # a letter where a digit belongs
        "1101011990030744A7",  # a base-13 digit the check-digit routine would accept
        "１１0101199003074477",  # full-width digits
    ],
)
def test_malformed_id_numbers_are_not_found_even_in_an_open_population(
    emulator: Emulator, base_url: str, id_number: str
) -> None:
    emulator.open_population = True
    assert _identity(base_url).verify("陈伟", id_number).reason == "not_found"


def test_a_lowercase_check_x_is_read_as_upper(emulator: Emulator, base_url: str) -> None:
    emulator.open_population = True
    # 11010519491231002X is the standard's own example number.
    assert _identity(base_url).verify("陈伟", "11010519491231002x").passed


def test_a_fault_injected_over_http_times_the_client_out(base_url: str) -> None:
    injected = _dev(
        base_url, "/dev/fault", {"endpoint": "/v1/identity/verify", "timeout": 0.5, "times": 1}
    )
    assert injected.status_code == 200
    with pytest.raises(ServiceUnavailable):
        _identity(base_url, timeout=0.2).verify(*PERSON)
    assert _identity(base_url).verify(*PERSON).reason == "not_found"  # used up


def test_a_5xx_injected_over_http_is_unavailable_for_the_bank_too(base_url: str) -> None:
    _dev(base_url, "/dev/fault", {"endpoint": "/v1/bank/account-check", "status": 503})
    with pytest.raises(ServiceUnavailable):
        _bank(base_url).verify(
            registered_name=COMPANY,
            account_name=COMPANY,
            account_number="6222020200112233445",
            bank_name="工商银行番禺支行",
        )


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint": "/v1/nowhere", "status": 500},
        {"endpoint": "/v1/identity/verify"},
        {"endpoint": "/v1/identity/verify", "status": 42},
        {"endpoint": "/v1/identity/verify", "timeout": -1},
        {"endpoint": "/v1/identity/verify", "status": 500, "times": 0},
        {"endpoint": "/v1/identity/verify", "status": 500, "times": "x"},
    ],
)
def test_a_malformed_fault_is_refused(base_url: str, body: dict[str, Any]) -> None:
    assert _dev(base_url, "/dev/fault", body).status_code == 400


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/dev/people", {"name": PERSON[0]}),
        ("/dev/accounts", {"account_number": "6222020200112233445", "holder_name": " "}),
        ("/dev/face/token", {"id_number": PERSON[1]}),
    ],
)
def test_dev_endpoints_refuse_incomplete_bodies(base_url: str, path: str, body: Any) -> None:
    assert _dev(base_url, path, body).status_code == 400


def test_a_400_without_a_contract_meaning_is_request_invalid(
    emulator: Emulator, base_url: str
) -> None:
    emulator.inject_fault("/v1/identity/verify", status=400)
    with pytest.raises(RequestInvalid):
        _identity(base_url).verify(*PERSON)
    # On the face endpoint only "token_invalid" is an answer; any other 400 stays an error.
    emulator.inject_fault("/v1/face/result", status=400)
    with pytest.raises(RequestInvalid):
        _identity(base_url).face_result("whatever")


def test_an_answer_outside_the_contract_is_unexpected(emulator: Emulator, base_url: str) -> None:
    emulator.inject_fault("/v1/identity/verify", status=200)  # 200 {"error": "injected"}
    with pytest.raises(UnexpectedAnswer):
        _identity(base_url).verify(*PERSON)
    emulator.inject_fault("/v1/face/result", status=200)
    with pytest.raises(UnexpectedAnswer):
        _identity(base_url).face_result("whatever")


def test_a_wrong_base_path_is_unexpected_not_a_decision(base_url: str) -> None:
    with pytest.raises(UnexpectedAnswer):
        _identity(base_url + "/wrong").verify(*PERSON)


def test_unsigned_service_calls_are_refused(base_url: str) -> None:
    answer = _dev(base_url, "/v1/identity/verify", {"name": PERSON[0], "id_number": PERSON[1]})
    assert (answer.status_code, answer.json()) == (401, {"error": "signature_invalid"})


def test_the_command_line_wants_app_id_and_secret_pairs() -> None:
    with pytest.raises(SystemExit):
        main(["--app", "no-secret"])
