"""A local emulator of the identity (real-name + face), bank-account and city-code (红棉码)
services.

It checks the request signature and timestamp as the real services do, keeps a table of
people (ID number -> name) and of accounts (number -> holder), and answers by them. With an
open population (the default) an ID number it does not list is taken to be a real person's,
as the national database would hold everyone, and an unlisted account to be held under the
name asked about: development flows work, while the people and accounts a test lists behave
exactly. Run it alone with `python -m verification.emulator --port 8766 --app ID:SECRET`.

Development endpoints (unsigned: they stand for the phone and the test bench):
`POST /dev/face/token {name, id_number, passed}` -> `{verify_token}`,
`POST /dev/people {name, id_number}`, `POST /dev/accounts {account_number, holder_name}`,
`POST /dev/citycode {name, id_number}` -> `{code, expires_at}` (the 红棉码 the person's phone
shows; valid CITY_CODE_TTL_SECONDS),
`POST /dev/fault {endpoint, status | timeout (seconds), times}`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeGuard

from stdnum.cn import ric
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from verification.http import MAX_CLOCK_SKEW_SECONDS, signature

log = logging.getLogger(__name__)

DEFAULT_APP_ID = "yhb-dev"
DEFAULT_SECRET = "dev-identity-service-secret"  # nosec B105  # the local emulator's own secret, refused in production
FACE_TOKEN_TTL_SECONDS = 600
CITY_CODE_TTL_SECONDS = 60
CITY_CODE_PREFIX = "HMM1"
SERVICE_ENDPOINTS = (
    "/v1/identity/verify",
    "/v1/face/result",
    "/v1/bank/account-check",
    "/v1/citycode/resolve",
)

# GB 11643: 17 ASCII digits and a check character; the check digit alone is then computed.
_ID_NUMBER = re.compile(r"[0-9]{17}[0-9X]")


@dataclass
class _FaceToken:
    name: str
    id_number: str
    passed: bool
    issued_at: float


@dataclass
class _CityCode:
    name: str
    id_number: str
    issued_at: float


@dataclass
class _Fault:
    status: int | None  # an HTTP status to answer with, or None for a delay
    delay: float
    times: int


class Emulator:
    """Both services as one WSGI app; its tables and faults are plain attributes for tests."""

    def __init__(
        self,
        apps: dict[str, str] | None = None,
        *,
        people: dict[str, str] | None = None,
        accounts: dict[str, str] | None = None,
        open_population: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.apps = dict(apps or {DEFAULT_APP_ID: DEFAULT_SECRET})
        self.people = dict(people or {})
        self.accounts = dict(accounts or {})
        self.open_population = open_population
        self.clock = clock
        self._tokens: dict[str, _FaceToken] = {}
        self._city_codes: dict[str, _CityCode] = {}
        self._faults: dict[str, _Fault] = {}
        self._lock = threading.Lock()
        self.calls: dict[str, int] = {}

    # -- the Python side, for tests and the dev endpoints

    def add_person(self, name: str, id_number: str) -> None:
        """List a person: their ID number then verifies only with this name."""
        self.people[id_number.upper()] = name

    def add_account(self, account_number: str, holder_name: str) -> None:
        """List an account: it then matches only this holder's name."""
        self.accounts[account_number] = holder_name

    def face_token(self, name: str, id_number: str, *, passed: bool = True) -> str:
        """What the mini-program's face SDK hands the page after a liveness check."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = _FaceToken(name, id_number.upper(), passed, self.clock())
        return token

    def city_code(self, name: str, id_number: str) -> str:
        """A 红棉码 as the person's city app shows it (resolvable until it expires)."""
        code = f"{CITY_CODE_PREFIX}{secrets.token_hex(16).upper()}"
        with self._lock:
            self._city_codes[code] = _CityCode(name, id_number.upper(), self.clock())
        return code

    def inject_fault(
        self, endpoint: str, *, status: int | None = None, delay: float = 0.0, times: int = 1
    ) -> None:
        """The next `times` calls of `endpoint` (e.g. "/v1/identity/verify") answer `status`
        or wait `delay` seconds first (both: wait, then answer `status`)."""
        with self._lock:
            self._faults[endpoint] = _Fault(status, delay, times)

    # -- WSGI

    def wsgi_app(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        response = self._respond(Request(environ))
        return response(environ, start_response)

    def _respond(self, request: Request) -> Response:
        path = request.path
        with self._lock:
            self.calls[path] = self.calls.get(path, 0) + 1
        if request.method != "POST":
            return _json({"error": "method_not_allowed"}, 405)
        fault = self._take_fault(path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                return _json({"error": "injected"}, fault.status)
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            return _json({"error": "body_not_json"}, 400)
        if not isinstance(body, dict):
            return _json({"error": "body_not_object"}, 400)
        if path.startswith("/dev/"):
            return self._dev(path, body)
        if not self._signed(request):
            return _json({"error": "signature_invalid"}, 401)
        handler = {
            "/v1/identity/verify": self._identity_verify,
            "/v1/face/result": self._face_result,
            "/v1/bank/account-check": self._account_check,
            "/v1/citycode/resolve": self._city_code_resolve,
        }.get(path)
        if handler is None:
            return _json({"error": "not_found"}, 404)
        return handler(body)

    def _signed(self, request: Request) -> bool:
        app_id = request.headers.get("X-App-Id", "")
        secret = self.apps.get(app_id)
        timestamp = request.headers.get("X-Timestamp", "")
        if secret is None or not timestamp.isdigit():
            return False
        if abs(self.clock() - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
            return False
        expected = signature(
            secret,
            timestamp=timestamp,
            nonce=request.headers.get("X-Nonce", ""),
            method=request.method,
            path=request.path,
            body=request.get_data(),
        )
        return hmac.compare_digest(expected, request.headers.get("X-Signature", ""))

    def _take_fault(self, path: str) -> _Fault | None:
        # Under the lock: parallel calls must not both spend a fault injected for one call.
        with self._lock:
            fault = self._faults.get(path)
            if fault is None:
                return None
            fault.times -= 1
            if fault.times <= 0:
                del self._faults[path]
            return fault

    # -- the services

    def _identity_result(self, name: str, id_number: str) -> str:
        number = id_number.upper()
        # The pattern first: calc_check_digit reads the digits in base 13, so letters and
        # full-width digits would otherwise crash it or pass.
        if not _ID_NUMBER.fullmatch(number) or ric.calc_check_digit(number) != number[-1]:
            return "not_found"
        listed = self.people.get(number)
        if listed is not None:
            return "match" if listed == name else "mismatch"
        return "match" if self.open_population else "not_found"

    def _identity_verify(self, body: dict[str, Any]) -> Response:
        name, id_number = body.get("name"), body.get("id_number")
        if not isinstance(name, str) or not isinstance(id_number, str):
            return _json({"error": "name_and_id_number_required"}, 400)
        return _json({"result": self._identity_result(name, id_number)})

    def _face_result(self, body: dict[str, Any]) -> Response:
        token = body.get("verify_token")
        with self._lock:
            entry = self._tokens.pop(token, None) if isinstance(token, str) else None
        if entry is None or self.clock() - entry.issued_at > FACE_TOKEN_TTL_SECONDS:
            return _json({"error": "token_invalid"}, 400)
        # The face matched the ID photo of the number given, which must be that person's.
        passed = entry.passed and self._identity_result(entry.name, entry.id_number) == "match"
        checked_at = dt.datetime.fromtimestamp(entry.issued_at, dt.UTC).isoformat()
        return _json(
            {
                "passed": passed,
                "name": entry.name,
                "id_number": entry.id_number,
                "checked_at": checked_at,
                "reason": None if passed else "face_mismatch",
            }
        )

    def _account_check(self, body: dict[str, Any]) -> Response:
        number, holder = body.get("account_number"), body.get("holder_name")
        if not isinstance(number, str) or not isinstance(holder, str):
            return _json({"error": "account_number_and_holder_name_required"}, 400)
        listed = self.accounts.get(number)
        if listed is None:
            result = "match" if self.open_population else "no_such_account"
        else:
            result = "match" if listed == holder else "mismatch"
        return _json({"result": result})

    def _city_code_resolve(self, body: dict[str, Any]) -> Response:
        code = body.get("code")
        if not isinstance(code, str):
            return _json({"error": "code_required"}, 400)
        with self._lock:
            entry = self._city_codes.get(code)
        if entry is None:
            return _json({"error": "code_invalid"}, 400)
        expires = entry.issued_at + CITY_CODE_TTL_SECONDS
        if self.clock() >= expires:
            return _json({"error": "code_expired"}, 400)
        return _json(
            {
                # Each code is its own serial: the city app shows a new one every minute.
                "serial": code[len(CITY_CODE_PREFIX) :].lower(),
                "name": entry.name,
                "id_number": entry.id_number,
                "expires_at": dt.datetime.fromtimestamp(expires, dt.UTC).isoformat(),
            }
        )

    # -- development endpoints (no signature: they stand for the phone and the test bench)

    def _dev(self, path: str, body: dict[str, Any]) -> Response:
        if path == "/dev/face/token":
            name, id_number = body.get("name"), body.get("id_number")
            if not isinstance(name, str) or not isinstance(id_number, str):
                return _json({"error": "name_and_id_number_required"}, 400)
            return _json(
                {
                    "verify_token": self.face_token(
                        name, id_number, passed=body.get("passed", True) is True
                    )
                }
            )
        if path == "/dev/people":
            name, id_number = body.get("name"), body.get("id_number")
            if not _text(name) or not _text(id_number):
                return _json({"error": "name_and_id_number_required"}, 400)
            self.add_person(name, id_number)
            return _json({"ok": True})
        if path == "/dev/accounts":
            number, holder = body.get("account_number"), body.get("holder_name")
            if not _text(number) or not _text(holder):
                return _json({"error": "account_number_and_holder_name_required"}, 400)
            self.add_account(number, holder)
            return _json({"ok": True})
        if path == "/dev/citycode":
            name, id_number = body.get("name"), body.get("id_number")
            if not _text(name) or not _text(id_number):
                return _json({"error": "name_and_id_number_required"}, 400)
            code = self.city_code(name, id_number)
            expires = dt.datetime.fromtimestamp(self.clock() + CITY_CODE_TTL_SECONDS, dt.UTC)
            return _json({"code": code, "expires_at": expires.isoformat()})
        if path == "/dev/fault":
            return self._dev_fault(body)
        return _json({"error": "not_found"}, 404)

    def _dev_fault(self, body: dict[str, Any]) -> Response:
        endpoint = body.get("endpoint")
        status = body.get("status")
        # "timeout" is the documented key; "delay" is the Python method's word for it.
        delay = body.get("timeout", body.get("delay", 0))
        times = body.get("times", 1)
        if endpoint not in SERVICE_ENDPOINTS:
            return _json({"error": "endpoint_unknown", "endpoints": list(SERVICE_ENDPOINTS)}, 400)
        if status is not None and not (_integer(status) and 200 <= status <= 599):
            return _json({"error": "status_invalid"}, 400)
        if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
            return _json({"error": "timeout_invalid"}, 400)
        if status is None and not delay:
            return _json({"error": "status_or_timeout_required"}, 400)
        if not (_integer(times) and times >= 1):
            return _json({"error": "times_invalid"}, 400)
        self.inject_fault(endpoint, status=status, delay=float(delay), times=times)
        return _json({"ok": True})


def _text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())


def _integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json"
    )


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # an access line per call would drown test output


def serve_in_thread(
    host: str = "127.0.0.1", port: int = 0, *, emulator: Emulator | None = None
) -> tuple[BaseWSGIServer, str]:
    """Serve an emulator from a daemon thread; returns the server and its base URL."""
    app = emulator if emulator is not None else Emulator()
    server = make_server(
        host, port, app.wsgi_app, threaded=True, request_handler=_QuietRequestHandler
    )
    # A short poll interval: shutdown() waits for the next poll, and tests stop a server each.
    threading.Thread(
        target=server.serve_forever, args=(0.05,), name="verification-emulator", daemon=True
    ).start()
    return server, f"http://{host}:{server.server_port}"


def main(argv: list[str] | None = None) -> None:
    """Run the emulator in the foreground."""
    parser = argparse.ArgumentParser(
        prog="python -m verification.emulator",
        description="Local emulator of the identity, bank-account and city-code services.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--app", action="append", metavar="APP_ID:SECRET")
    parser.add_argument("--closed", action="store_true", help="only listed people and accounts")
    args = parser.parse_args(argv)
    apps = None
    if args.app:
        pairs = [item.split(":", 1) for item in args.app]
        if any(len(pair) != 2 or not all(pair) for pair in pairs):
            parser.error("--app takes APP_ID:SECRET")
        apps = {app_id: secret for app_id, secret in pairs}
    emulator = Emulator(apps, open_population=not args.closed)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # Werkzeug's access lines carry paths and statuses only, never a body: safe to keep.
    server = make_server(args.host, args.port, emulator.wsgi_app, threaded=True)
    log.info("verification emulator on http://%s:%s", args.host, args.port)
    server.serve_forever()


if __name__ == "__main__":
    main()
