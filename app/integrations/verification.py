"""The identity and bank-account verification services of this app.

`IDENTITY_SERVICE_BASE` is the real-name service's URL, the word `emulator` (a local emulator
on loopback inside this process, started on first use: development and tests) or `checksum`
(no service at all: format checks only, for offline development; production refuses it).
`BANK_ACCOUNT_SERVICE_BASE` is the bank-account check's URL, `emulator`, or `exact_name` (the
embedded rule: the account holder's name must equal the enterprise's registered name).
`CITY_CODE_SERVICE_BASE` is the city's 红棉码 service: a URL, `emulator`, or `disabled`.
Services without their own app id and secret use the identity service's.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import requests
from flask import Flask

from app.extensions import current_flask_app
from app.identity.verifiers import ChecksumVerifier
from verification.bank import BankAccountVerifier, ExactNameRule, HttpBankAccountService
from verification.citycode import CityCodeResolver, HttpCityCodeService
from verification.emulator import Emulator, serve_in_thread
from verification.identity import FaceVerifier, HttpIdentityService, IdentityVerifier

log = logging.getLogger(__name__)

_lock = threading.Lock()  # building the services
_emulator_lock = threading.Lock()  # starting an emulator (taken while _lock is held)
_emulators: dict[tuple[str, int], tuple[Emulator, str]] = {}


def start_local_emulator(app_id: str, secret: str, port: int = 0) -> tuple[Emulator, str]:
    """Serve the verification emulator on loopback once per process (and credentials);
    returns it and its base URL."""
    key = (app_id, port)
    with _emulator_lock:
        if key not in _emulators:
            emulator = Emulator(apps={app_id: secret})
            _server, base_url = serve_in_thread("127.0.0.1", port, emulator=emulator)
            _emulators[key] = (emulator, base_url)
            log.info("verification emulator listening", extra={"base_url": base_url})
    return _emulators[key]


@dataclass(frozen=True)
class VerificationServices:
    identity: IdentityVerifier
    face: FaceVerifier | None  # None: no face verification available (checksum mode)
    bank: BankAccountVerifier
    city_code: CityCodeResolver | None = None  # None: the district is not linked to 红棉码
    emulator: Emulator | None = None  # the in-process emulator, when one stands in


def _http_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback or a fixed government endpoint: no proxy lookups
    return session


def _build(app: Flask) -> VerificationServices:
    config = app.config
    emulator: Emulator | None = None
    identity_base = config["IDENTITY_SERVICE_BASE"]
    identity: IdentityVerifier
    face: FaceVerifier | None
    if identity_base == "checksum":
        identity, face = ChecksumVerifier(), None
    else:
        if identity_base == "emulator":
            emulator, identity_base = start_local_emulator(
                config["IDENTITY_SERVICE_APP_ID"], config["IDENTITY_SERVICE_SECRET"]
            )
        service = HttpIdentityService(
            _http_session(),
            base_url=identity_base,
            app_id=config["IDENTITY_SERVICE_APP_ID"],
            secret=config["IDENTITY_SERVICE_SECRET"],
            timeout=config["VERIFICATION_TIMEOUT_SECONDS"],
        )
        identity, face = service, service

    bank_base = config["BANK_ACCOUNT_SERVICE_BASE"]
    bank: BankAccountVerifier
    if bank_base == "exact_name":
        bank = ExactNameRule()
    else:
        if bank_base == "emulator":
            emulator, bank_base = start_local_emulator(
                config["IDENTITY_SERVICE_APP_ID"], config["IDENTITY_SERVICE_SECRET"]
            )
        bank = HttpBankAccountService(
            _http_session(),
            base_url=bank_base,
            app_id=config["BANK_ACCOUNT_SERVICE_APP_ID"] or config["IDENTITY_SERVICE_APP_ID"],
            secret=config["BANK_ACCOUNT_SERVICE_SECRET"] or config["IDENTITY_SERVICE_SECRET"],
            timeout=config["VERIFICATION_TIMEOUT_SECONDS"],
        )
    city_base = config["CITY_CODE_SERVICE_BASE"]
    city_code: CityCodeResolver | None = None
    if city_base != "disabled":
        if city_base == "emulator":
            emulator, city_base = start_local_emulator(
                config["IDENTITY_SERVICE_APP_ID"], config["IDENTITY_SERVICE_SECRET"]
            )
        city_code = HttpCityCodeService(
            _http_session(),
            base_url=city_base,
            app_id=config["CITY_CODE_SERVICE_APP_ID"] or config["IDENTITY_SERVICE_APP_ID"],
            secret=config["CITY_CODE_SERVICE_SECRET"] or config["IDENTITY_SERVICE_SECRET"],
            timeout=config["VERIFICATION_TIMEOUT_SECONDS"],
        )
    return VerificationServices(
        identity=identity, face=face, bank=bank, city_code=city_code, emulator=emulator
    )


def init_verification(app: Flask) -> None:
    app.extensions["verification"] = None  # built on first use, like the WeChat client


def get_verification(app: Flask | None = None) -> VerificationServices:
    """The app's verification services, built on first use."""
    app = app or current_flask_app()
    services: VerificationServices | None = app.extensions.get("verification")
    if services is None:
        with _lock:
            services = app.extensions.get("verification")
            if services is None:
                services = app.extensions["verification"] = _build(app)
    return services
