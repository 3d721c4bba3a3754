"""The 红棉码 connector against the emulator over real HTTP: the holder of a live code, typed
refusals for expired and unknown codes, timeouts and 5xx as ServiceUnavailable, nothing
personal in the logs."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import requests

from tests.verification.conftest import Clock
from verification.citycode import CityCodeRejected, HttpCityCodeService
from verification.emulator import CITY_CODE_TTL_SECONDS, Emulator
from verification.errors import CredentialsRejected, ServiceUnavailable, VerificationError

APP_ID, SECRET = "yhb-test", "test-city-secret"
PERSON = ("黄泽海", "440113197805123413")


@pytest.fixture
def emulator(clock: Clock) -> Emulator:
    return Emulator({APP_ID: SECRET}, clock=clock)


def _service(base_url: str, secret: str = SECRET, timeout: float = 2.0) -> HttpCityCodeService:
    return HttpCityCodeService(
        requests.Session(), base_url=base_url, app_id=APP_ID, secret=secret, timeout=timeout
    )


def test_a_live_code_names_its_holder_until_it_expires(
    emulator: Emulator, base_url: str, clock: Clock
) -> None:
    code = emulator.city_code(*PERSON)

    holder = _service(base_url).resolve(code)

    assert (holder.name, holder.id_number) == PERSON
    assert holder.serial and holder.serial in code.lower()
    assert holder.expires_at.tzinfo is not None
    assert holder.expires_at - dt.datetime.now(dt.UTC) <= dt.timedelta(
        seconds=CITY_CODE_TTL_SECONDS
    )
    assert PERSON[1] not in repr(holder) and PERSON[0] not in repr(holder)
    clock.now += CITY_CODE_TTL_SECONDS
    with pytest.raises(CityCodeRejected) as expired:
        _service(base_url).resolve(code)
    assert expired.value.reason == "code_expired"


def test_unknown_codes_are_refused_without_a_call_when_malformed(
    emulator: Emulator, base_url: str
) -> None:
    with pytest.raises(CityCodeRejected) as unknown:
        _service(base_url).resolve("HMM1" + "0" * 32)
    assert unknown.value.reason == "code_invalid"
    calls = dict(emulator.calls)
    with pytest.raises(CityCodeRejected):
        _service(base_url).resolve("x" * 300)
    assert emulator.calls == calls  # too long to be a code: no call made


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"status": 503}, ServiceUnavailable),
        ({"delay": 1.0}, ServiceUnavailable),
    ],
)
def test_faults_are_typed_errors(
    emulator: Emulator, base_url: str, fault: dict, error: type[VerificationError]
) -> None:
    code = emulator.city_code(*PERSON)
    emulator.inject_fault("/v1/citycode/resolve", **fault)

    with pytest.raises(error) as raised:
        _service(base_url, timeout=0.3).resolve(code)
    assert raised.value.transient


def test_a_wrong_secret_is_a_configuration_error(emulator: Emulator, base_url: str) -> None:
    code = emulator.city_code(*PERSON)
    with pytest.raises(CredentialsRejected):
        _service(base_url, secret="wrong").resolve(code)


def test_nothing_personal_is_logged(
    emulator: Emulator, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _service(base_url).resolve(emulator.city_code(*PERSON))

    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert PERSON[0] not in logged and PERSON[1] not in logged


def test_the_dev_endpoint_hands_out_codes_as_the_citys_app_would(
    emulator: Emulator, base_url: str
) -> None:
    issued = requests.post(
        base_url + "/dev/citycode", json={"name": PERSON[0], "id_number": PERSON[1]}, timeout=2
    )
    assert issued.status_code == 200
    assert _service(base_url).resolve(issued.json()["code"]).id_number == PERSON[1]
    missing = requests.post(base_url + "/dev/citycode", json={"name": PERSON[0]}, timeout=2)
    assert missing.status_code == 400
