"""A local emulator of the WeChat mini-program server API, on plain Werkzeug.

It answers the real URLs with the real parameters, answers and errcodes, so the app's dev
mode and the tests drive the real client over real HTTP. Dev-only endpoints under
`/_emulator/` play the phone's part (wx.login, the phone-number button, tapping 允许 on a
subscribe prompt) and let tests inject faults and read what was sent.

Run standalone with `python -m wechat.emulator --port 8765`.
"""

from __future__ import annotations

import argparse
import base64
import io
import itertools
import json
import logging
import os
import secrets
import string
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import qrcode
import qrcode.constants
from PIL import Image
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from wechat import crypto, push, wxacode
from wechat.templates import DEFAULT_TEMPLATES, TemplateSpec, check_template_data

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = [
    "API_ENDPOINTS",
    "DEFAULT_APPID",
    "DEFAULT_SECRET",
    "DEFAULT_TEMPLATES",
    "Emulator",
    "render_code",
    "serve_in_thread",
]

DEFAULT_APPID = "wxd0c0ffee00000001"
DEFAULT_SECRET = "emulator-secret-not-for-production"  # nosec B105  # the local emulator's own secret, refused in production

# Endpoint names used by rate_limits, faults and stats.
API_ENDPOINTS = (
    "jscode2session",
    "stable_token",
    "getuserphonenumber",
    "subscribe_send",
    "getwxacodeunlimit",
)

ERRMSGS: Mapping[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40029: "invalid code",
    40037: "invalid template_id",
    40097: "invalid args",
    40125: "invalid appsecret",
    40163: "code been used",
    40169: "invalid length for scene, or the data is not json string",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    41030: "invalid page",
    42001: "access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    43101: "user refuse to accept the msg",
    44002: "empty post data",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    47001: "data format error",
    47003: "argument invalid!",
}

# WeChat's normal mode hands out a new stable token in the old one's last 5 minutes,
# during which both are valid.
STABLE_TOKEN_RENEW_WINDOW = 300.0
# Forced refreshes: at most 20 a day, and one within 30 s of the last is ignored.
FORCED_REFRESHES_PER_DAY = 20
FORCED_REFRESH_SPACING = 30.0

log = logging.getLogger(__name__)


class _Refusal(Exception):
    """An API call answered with an errcode."""

    def __init__(self, errcode: int, detail: str = "") -> None:
        super().__init__(errcode, detail)
        self.errcode = errcode
        self.detail = detail

    def body(self) -> dict[str, Any]:
        base = ERRMSGS.get(self.errcode, "emulated error")
        rid = "-".join(secrets.token_hex(4) for _ in range(3))
        text = f"{base} {self.detail}" if self.detail else base
        return {"errcode": self.errcode, "errmsg": f"{text} rid: {rid}"}


@dataclass
class _User:
    appid: str
    openid: str
    unionid: str | None = None
    session_key: str | None = None


@dataclass
class _Code:
    appid: str
    issued_at: float
    openid: str = ""
    phone: tuple[str, str] = ("", "")
    used: bool = False


@dataclass
class _Token:
    appid: str
    value: str
    expires_at: float
    revoked: bool = False


@dataclass
class _StableState:
    current: _Token | None = None
    last_forced_at: float | None = None
    forced_day: int = -1
    forced_today: int = 0


@dataclass
class _Fault:
    errcode: int | None
    delay: float
    remaining: int


@dataclass
class _State:
    users: dict[tuple[str, str], _User] = field(default_factory=dict)
    login_codes: dict[str, _Code] = field(default_factory=dict)
    phone_codes: dict[str, _Code] = field(default_factory=dict)
    tokens: dict[str, _Token] = field(default_factory=dict)
    stable: dict[str, _StableState] = field(default_factory=dict)
    grants: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    messages: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[str, deque[_Fault]] = field(default_factory=dict)
    windows: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    tokens_issued: int = 0
    msgids: Iterator[int] = field(default_factory=lambda: itertools.count(2_000_000_001))


class Emulator:
    """In-memory WeChat for one or more apps, served as a WSGI app (`wsgi_app`)."""

    def __init__(
        self,
        apps: Mapping[str, str] | None = None,
        *,
        token_ttl: float = 7200,
        code_ttl: float = 300,
        rate_limits: Mapping[str, int] | None = None,
        templates: Mapping[str, TemplateSpec] | None = None,
        pages: Iterable[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.apps = dict(apps or {DEFAULT_APPID: DEFAULT_SECRET})
        self.token_ttl = token_ttl
        self.code_ttl = code_ttl
        unknown = set(rate_limits or ()) - set(API_ENDPOINTS)
        if unknown:
            raise ValueError(f"rate_limits for unknown endpoints: {sorted(unknown)}")
        # Calls per minute per appid, by endpoint name; endpoints not listed are unlimited.
        self.rate_limits = dict(rate_limits or {})
        self.templates = dict(DEFAULT_TEMPLATES if templates is None else templates)
        # The published app's pages; None accepts any page.
        self.pages = None if pages is None else frozenset(pages)
        self.clock = clock
        self._lock = threading.Lock()
        self._state = _State()
        self._urls = Map(
            [
                Rule("/sns/jscode2session", endpoint="jscode2session", methods=["GET"]),
                Rule("/cgi-bin/stable_token", endpoint="stable_token", methods=["POST"]),
                Rule(
                    "/wxa/business/getuserphonenumber",
                    endpoint="getuserphonenumber",
                    methods=["POST"],
                ),
                Rule(
                    "/cgi-bin/message/subscribe/send", endpoint="subscribe_send", methods=["POST"]
                ),
                Rule("/wxa/getwxacodeunlimit", endpoint="getwxacodeunlimit", methods=["POST"]),
                Rule("/_emulator/login", endpoint="dev_login", methods=["POST"]),
                Rule("/_emulator/phone-code", endpoint="dev_phone_code", methods=["POST"]),
                Rule(
                    "/_emulator/encrypted-phone", endpoint="dev_encrypted_phone", methods=["POST"]
                ),
                Rule("/_emulator/subscriptions", endpoint="dev_subscriptions", methods=["POST"]),
                Rule("/_emulator/messages", endpoint="dev_messages", methods=["GET"]),
                Rule("/_emulator/stats", endpoint="dev_stats", methods=["GET"]),
                Rule("/_emulator/faults", endpoint="dev_faults", methods=["POST"]),
                Rule("/_emulator/reset", endpoint="dev_reset", methods=["POST"]),
                Rule("/_emulator/push-signature", endpoint="dev_push_signature", methods=["POST"]),
            ]
        )

    # -- WSGI --------------------------------------------------------------------------------

    def wsgi_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer one HTTP request."""
        response = self._respond(Request(environ))
        return response(environ, start_response)

    __call__ = wsgi_app

    def _respond(self, request: Request) -> Response:
        dev = request.path.startswith("/_emulator/")
        try:
            endpoint, _ = self._urls.bind_to_environ(request.environ).match()
        except MethodNotAllowed as exc:
            if dev:
                return _json({"error": "method not allowed"}, status=405)
            post_only = "POST" in (exc.valid_methods or ())
            return _json(_Refusal(43002 if post_only else 43001).body())
        except NotFound:
            return _json(_Refusal(-1, f"no such api: {request.path}").body(), status=404)
        if dev:
            return self._dev(endpoint, request)
        fault = self._take_fault(endpoint)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)  # real time: this is for the client's timeouts
        try:
            if fault is not None and fault.errcode is not None:
                raise _Refusal(fault.errcode, "(injected)")
            handler: Callable[[Request], Response] = getattr(self, f"_api_{endpoint}")
            return handler(request)
        except _Refusal as refusal:
            return _json(refusal.body())

    # -- API endpoints -------------------------------------------------------------------

    def _api_jscode2session(self, request: Request) -> Response:
        args = request.args
        appid = args.get("appid", "")
        with self._lock:
            self._check_credentials(appid, args.get("secret", ""))
            if args.get("grant_type") != "authorization_code":
                raise _Refusal(40002)
            js_code = args.get("js_code", "")
            if not js_code:
                raise _Refusal(41008)
            self._admit("jscode2session", appid)
            login = self._state.login_codes.get(js_code)
            if login is None or login.appid != appid:
                raise _Refusal(40029)
            if login.used:
                raise _Refusal(40163)
            if self.clock() - login.issued_at >= self.code_ttl:
                raise _Refusal(40029)  # WeChat calls an expired code invalid, not expired
            login.used = True
            user = self._state.users[(appid, login.openid)]
            # Every login gets a new session key, which replaces the old one.
            user.session_key = base64.b64encode(os.urandom(16)).decode("ascii")
            answer: dict[str, Any] = {"openid": user.openid, "session_key": user.session_key}
            if user.unionid:
                answer["unionid"] = user.unionid
        return _json(answer)

    def _api_stable_token(self, request: Request) -> Response:
        body = _api_json(request)
        appid = body.get("appid")
        secret = body.get("secret")
        force = body.get("force_refresh", False)
        with self._lock:
            self._check_credentials(appid, secret)
            if body.get("grant_type") != "client_credential":
                raise _Refusal(40002)
            if not isinstance(force, bool):
                raise _Refusal(40097, "force_refresh must be a boolean")
            assert isinstance(appid, str)
            self._admit("stable_token", appid)
            token = self._stable_token(appid, force=force)
            expires_in = int(token.expires_at - self.clock())
        return _json({"access_token": token.value, "expires_in": expires_in})

    def _stable_token(self, appid: str, *, force: bool) -> _Token:
        now = self.clock()
        stable = self._state.stable.setdefault(appid, _StableState())
        current = stable.current
        recently_forced = (
            stable.last_forced_at is not None
            and now - stable.last_forced_at < FORCED_REFRESH_SPACING
        )
        if force and not recently_forced:
            day = int(now // 86400)
            if stable.forced_day != day:
                stable.forced_day, stable.forced_today = day, 0
            if stable.forced_today >= FORCED_REFRESHES_PER_DAY:
                raise _Refusal(45009)
            stable.forced_today += 1
            stable.last_forced_at = now
            if current is not None:
                current.revoked = True  # a forced refresh invalidates the previous token
            current = None
        renew_window = min(STABLE_TOKEN_RENEW_WINDOW, self.token_ttl / 2)
        if current is None or now >= current.expires_at - renew_window:
            # The replaced token stays valid until its own expiry, as in WeChat's overlap.
            current = _Token(appid, secrets.token_urlsafe(48), now + self.token_ttl)
            self._state.tokens[current.value] = current
            self._state.tokens_issued += 1
            stable.current = current
        return current

    def _api_getuserphonenumber(self, request: Request) -> Response:
        body = _api_json(request)
        with self._lock:
            appid = self._authorize(request, "getuserphonenumber")
            code = body.get("code")
            if not isinstance(code, str) or not code:
                raise _Refusal(41008)
            entry = self._state.phone_codes.get(code)
            if entry is None or entry.appid != appid:
                raise _Refusal(40029)
            if entry.used:
                raise _Refusal(40163)
            if self.clock() - entry.issued_at >= self.code_ttl:
                raise _Refusal(40029)
            entry.used = True
            pure, country_code = entry.phone
            info = _phone_info(pure, country_code, appid=appid, timestamp=int(self.clock()))
        return _json({"errcode": 0, "errmsg": "ok", "phone_info": info})

    def _api_subscribe_send(self, request: Request) -> Response:
        body = _api_json(request)
        with self._lock:
            appid = self._authorize(request, "subscribe_send")
            touser = body.get("touser")
            if not isinstance(touser, str) or (appid, touser) not in self._state.users:
                raise _Refusal(40003)
            template_id = str(body.get("template_id", ""))
            template = self.templates.get(template_id)
            if template is None:
                raise _Refusal(40037)
            values = _template_values(body.get("data"), template)
            page = body.get("page")
            if page is not None and not self._page_exists(page):
                raise _Refusal(41030)
            state = body.get("miniprogram_state", "formal")
            if state not in ("developer", "trial", "formal"):
                raise _Refusal(47003, "miniprogram_state invalid")
            lang = body.get("lang", "zh_CN")
            if lang not in ("zh_CN", "en_US", "zh_HK", "zh_TW"):
                raise _Refusal(47003, "lang invalid")
            if not template.long_term:
                # Keyed by the id the app uses, as grant_subscription is: an emulator given
                # production's template ids (WECHAT_TEMPLATES) knows them by those.
                grant = (appid, touser, template_id)
                if self._state.grants[grant] <= 0:
                    raise _Refusal(43101)
                # Each 允许 tap allows exactly one message.
                self._state.grants[grant] -= 1
            msgid = next(self._state.msgids)
            self._state.messages.append(
                {
                    "msgid": msgid,
                    "appid": appid,
                    "touser": touser,
                    "template_id": template_id,
                    "page": page,
                    "data": values,
                    "miniprogram_state": state,
                    "lang": lang,
                    "sent_at": self.clock(),
                }
            )
        return _json({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    def _api_getwxacodeunlimit(self, request: Request) -> Response:
        body = _api_json(request)
        with self._lock:
            appid = self._authorize(request, "getwxacodeunlimit")
        scene = body.get("scene")
        if not isinstance(scene, str) or wxacode.scene_problem(scene) is not None:
            raise _Refusal(40169)
        page = body.get("page")
        check_path = body.get("check_path", True)  # WeChat checks the page unless told not to
        if page is not None:
            if not isinstance(page, str) or wxacode.page_problem(page) is not None:
                raise _Refusal(41030)
            if check_path and not self._page_exists(page):
                raise _Refusal(41030)
        env_version = body.get("env_version", "release")
        if env_version not in wxacode.ENV_VERSIONS:
            raise _Refusal(40097, "env_version invalid")
        width = body.get("width", 430)
        if not isinstance(width, int):
            raise _Refusal(40097, "width invalid")
        width = min(max(width, wxacode.MIN_WIDTH), wxacode.MAX_WIDTH)
        content = "https://wxacode.emulator.invalid/?" + urlencode(
            {"appid": appid, "page": page or "", "scene": scene, "env_version": env_version}
        )
        return Response(render_code(content, width), content_type="image/png")

    def _check_credentials(self, appid: object, secret: object) -> None:
        if not isinstance(appid, str) or not appid:
            raise _Refusal(41002)
        if appid not in self.apps:
            raise _Refusal(40013)
        if not isinstance(secret, str) or not secret:
            raise _Refusal(41004)
        if secret != self.apps[appid]:
            raise _Refusal(40125)

    def _authorize(self, request: Request, endpoint: str) -> str:
        """Check the access_token query parameter; return the appid it belongs to."""
        value = request.args.get("access_token", "")
        if not value:
            raise _Refusal(41001)
        token = self._state.tokens.get(value)
        if token is None or token.revoked:
            raise _Refusal(40001)
        if self.clock() >= token.expires_at:
            raise _Refusal(42001)
        self._admit(endpoint, token.appid)
        return token.appid

    def _admit(self, endpoint: str, appid: str) -> None:
        """Count a call against the endpoint's per-minute quota, or refuse it with 45011."""
        limit = self.rate_limits.get(endpoint)
        if limit is None:
            return
        now = self.clock()
        window = self._state.windows.setdefault((endpoint, appid), deque())
        while window and now - window[0] >= 60:
            window.popleft()
        if len(window) >= limit:
            raise _Refusal(45011)
        window.append(now)

    def _page_exists(self, page: object) -> bool:
        if not isinstance(page, str):
            return False
        return self.pages is None or page.split("?", 1)[0] in self.pages

    def _take_fault(self, endpoint: str) -> _Fault | None:
        with self._lock:
            self._state.calls[endpoint] += 1
            queue = self._state.faults.get(endpoint)
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.popleft()
            return fault

    # -- what the phone and the tests do -------------------------------------------------

    def login(
        self, *, openid: str | None = None, unionid: str | None = None, appid: str | None = None
    ) -> dict[str, str]:
        """Do what wx.login does on a phone: return a fresh login code for the user."""
        appid = self._known_appid(appid)
        with self._lock:
            openid = openid or _wechat_id()
            user = self._state.users.setdefault((appid, openid), _User(appid, openid))
            if unionid:
                user.unionid = unionid
            code = secrets.token_urlsafe(24)
            self._state.login_codes[code] = _Code(appid, self.clock(), openid=openid)
        return {"code": code, "openid": openid}

    def phone_code(self, phone: str, *, country_code: str = "86", appid: str | None = None) -> str:
        """Do what the getPhoneNumber button does: return a single-use phone code."""
        appid = self._known_appid(appid)
        _check_phone(phone, country_code)
        with self._lock:
            code = secrets.token_hex(32)
            self._state.phone_codes[code] = _Code(appid, self.clock(), phone=(phone, country_code))
        return code

    def encrypted_phone(
        self,
        openid: str,
        phone: str,
        *,
        country_code: str = "86",
        appid: str | None = None,
        watermark_appid: str | None = None,
    ) -> dict[str, str]:
        """Encrypt phone data as the legacy button did, with the user's latest session key."""
        appid = self._known_appid(appid)
        _check_phone(phone, country_code)
        with self._lock:
            user = self._state.users.get((appid, openid))
            if user is None or user.session_key is None:
                raise ValueError("that openid has no session key yet: log in first")
            session_key = user.session_key
        info = _phone_info(
            phone, country_code, appid=watermark_appid or appid, timestamp=int(self.clock())
        )
        encrypted, iv = crypto.encrypt_user_data(session_key, info)
        return {"encryptedData": encrypted, "iv": iv}

    def grant_subscription(
        self, openid: str, template_id: str, *, count: int = 1, appid: str | None = None
    ) -> int:
        """Record that the user tapped 允许 `count` times; return their grants for the template."""
        appid = self._known_appid(appid)
        if template_id not in self.templates:
            raise ValueError(f"unknown template {template_id!r}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            if (appid, openid) not in self._state.users:
                raise ValueError(f"unknown openid {openid!r}: log in first")
            self._state.grants[(appid, openid, template_id)] += count
            return self._state.grants[(appid, openid, template_id)]

    def sent_messages(self, touser: str | None = None) -> list[dict[str, Any]]:
        """Return the subscribe messages sent so far, oldest first."""
        with self._lock:
            return [
                dict(message)
                for message in self._state.messages
                if touser is None or message["touser"] == touser
            ]

    def stats(self) -> dict[str, Any]:
        """Return call counts per API endpoint, new tokens issued and messages sent."""
        with self._lock:
            return {
                "calls": {name: self._state.calls[name] for name in API_ENDPOINTS},
                "tokens_issued": self._state.tokens_issued,
                "messages_sent": len(self._state.messages),
            }

    def inject_fault(
        self, endpoint: str, *, errcode: int | None = None, times: int = 1, delay: float = 0.0
    ) -> None:
        """Make the next `times` calls to an endpoint wait `delay` s and/or answer `errcode`."""
        if endpoint not in API_ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(API_ENDPOINTS)}")
        if times < 1 or delay < 0 or (errcode is None and not delay):
            raise ValueError("a fault needs times >= 1 and an errcode or a positive delay")
        with self._lock:
            queue = self._state.faults.setdefault(endpoint, deque())
            queue.append(_Fault(errcode, delay, times))

    def reset(self) -> None:
        """Forget every user, code, token, grant, message, fault and count."""
        with self._lock:
            self._state = _State()

    def sign_push(self, token: str) -> dict[str, str]:
        """Sign a message-push verification request the way WeChat does."""
        timestamp = str(int(self.clock()))
        nonce = "".join(secrets.choice(string.digits) for _ in range(10))
        signature = push.push_signature(token, timestamp, nonce)
        return {"signature": signature, "timestamp": timestamp, "nonce": nonce}

    def _known_appid(self, appid: str | None) -> str:
        if appid is None:
            return next(iter(self.apps))
        if appid not in self.apps:
            raise ValueError(f"unknown appid {appid!r}")
        return appid

    # -- dev endpoints ---------------------------------------------------------------------

    def _dev(self, endpoint: str, request: Request) -> Response:
        try:
            body = _dev_json(request)
            return _json(self._dev_answer(endpoint, body, request))
        except (ValueError, TypeError, KeyError) as exc:
            return _json({"error": str(exc)}, status=400)

    def _dev_answer(self, endpoint: str, body: dict[str, Any], request: Request) -> dict[str, Any]:
        appid = _optional_str(body, "appid")
        if endpoint == "dev_login":
            return self.login(
                openid=_optional_str(body, "openid"),
                unionid=_optional_str(body, "unionid"),
                appid=appid,
            )
        if endpoint == "dev_phone_code":
            code = self.phone_code(
                _required_str(body, "phone"),
                country_code=_optional_str(body, "country_code") or "86",
                appid=appid,
            )
            return {"code": code}
        if endpoint == "dev_encrypted_phone":
            return self.encrypted_phone(
                _required_str(body, "openid"),
                _required_str(body, "phone"),
                country_code=_optional_str(body, "country_code") or "86",
                appid=appid,
                watermark_appid=_optional_str(body, "watermark_appid"),
            )
        if endpoint == "dev_subscriptions":
            granted = self.grant_subscription(
                _required_str(body, "openid"),
                _required_str(body, "template_id"),
                count=int(body.get("count", 1)),
                appid=appid,
            )
            return {"granted": granted}
        if endpoint == "dev_messages":
            return {"messages": self.sent_messages(request.args.get("touser"))}
        if endpoint == "dev_stats":
            return self.stats()
        if endpoint == "dev_faults":
            errcode = body.get("errcode")
            self.inject_fault(
                _required_str(body, "endpoint"),
                errcode=None if errcode is None else int(errcode),
                times=int(body.get("times", 1)),
                delay=float(body.get("delay", 0.0)),
            )
            return {"ok": True}
        if endpoint == "dev_reset":
            self.reset()
            return {"ok": True}
        if endpoint == "dev_push_signature":
            return self.sign_push(_required_str(body, "token"))
        raise ValueError(f"no dev endpoint {endpoint}")


def render_code(content: str, width: int) -> bytes:
    """Draw `content` as a QR code on a white `width`-pixel square; return PNG bytes."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(content)
    code.make(fit=True)
    # Whole pixels per module keep the code crisp enough for any scanner.
    code.box_size = max(1, width // (code.modules_count + 2 * code.border))
    drawn = code.make_image(fill_color="black", back_color="white").get_image().convert("RGB")
    if drawn.width > width:
        drawn = drawn.resize((width, width), Image.Resampling.NEAREST)
    canvas = Image.new("RGB", (width, width), "white")
    offset = (width - drawn.width) // 2
    canvas.paste(drawn, (offset, offset))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def _json(body: Mapping[str, Any], status: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=status,
        content_type="application/json; charset=utf-8",
    )


def _api_json(request: Request) -> dict[str, Any]:
    raw = request.get_data()
    if not raw:
        raise _Refusal(44002)
    try:
        body = json.loads(raw)
    except ValueError:
        raise _Refusal(47001) from None
    if not isinstance(body, dict):
        raise _Refusal(47001)
    return body


def _dev_json(request: Request) -> dict[str, Any]:
    raw = request.get_data()
    if not raw:
        return {}
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    return body


def _optional_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value or None


def _required_str(body: Mapping[str, Any], key: str) -> str:
    value = _optional_str(body, key)
    if value is None:
        raise ValueError(f"{key} is required")
    return value


def _template_values(data: object, template: TemplateSpec) -> dict[str, str]:
    """Unwrap {"thing1": {"value": ...}} and check it against the template, as WeChat does."""
    if not isinstance(data, dict):
        raise _Refusal(47003, "data invalid")
    values: dict[str, str] = {}
    for key, item in data.items():
        if key not in template.fields:
            raise _Refusal(47003, f"data.{key} is not a field of the template")
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            raise _Refusal(47003, f"data.{key}.value invalid")
        values[key] = item["value"]
    for key in template.fields:
        if key not in values:
            raise _Refusal(47003, f"data.{key}.value is empty")
    problems = check_template_data(values, enums=template.enums)
    if problems:
        key = next(iter(problems))
        raise _Refusal(47003, f"data.{key}.value invalid")
    return values


def _phone_info(pure: str, country_code: str, *, appid: str, timestamp: int) -> dict[str, Any]:
    # Mainland numbers come without the country code; others carry it.
    full = pure if country_code == "86" else f"+{country_code}{pure}"
    return {
        "phoneNumber": full,
        "purePhoneNumber": pure,
        "countryCode": country_code,
        "watermark": {"timestamp": timestamp, "appid": appid},
    }


def _check_phone(phone: str, country_code: str) -> None:
    if not (phone.isascii() and phone.isdigit() and 5 <= len(phone) <= 15):
        raise ValueError("phone must be 5 to 15 digits")
    if not (country_code.isascii() and country_code.isdigit() and len(country_code) <= 4):
        raise ValueError("country_code must be 1 to 4 digits")


def _wechat_id() -> str:
    """A new id shaped like an openid or unionid: "o" and 27 URL-safe characters."""
    return "o" + secrets.token_urlsafe(21)[:27]


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # An access line per call would drown test output; the standalone server keeps them.
        pass


def serve_in_thread(
    host: str = "127.0.0.1", port: int = 0, *, emulator: Emulator | None = None
) -> tuple[BaseWSGIServer, str]:
    """Serve an emulator from a daemon thread; return the server and its base URL.

    Port 0 picks a free port; without an emulator a default one (DEFAULT_APPID) is served.
    Stop it with `server.shutdown(); server.server_close()`.
    """
    app = emulator if emulator is not None else Emulator()
    server = make_server(
        host, port, app.wsgi_app, threaded=True, request_handler=_QuietRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="wechat-emulator", daemon=True)
    thread.start()
    return server, f"http://{host}:{server.server_port}"


def main(argv: list[str] | None = None) -> None:
    """Run the emulator in the foreground."""
    parser = argparse.ArgumentParser(
        prog="python -m wechat.emulator", description="Local WeChat mini-program API emulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--app",
        action="append",
        metavar="APPID:SECRET",
        help=f"an app it knows (repeatable); default {DEFAULT_APPID}:{DEFAULT_SECRET}",
    )
    parser.add_argument("--token-ttl", type=float, default=7200)
    parser.add_argument("--code-ttl", type=float, default=300)
    parser.add_argument("--quiet", action="store_true", help="no access log line per request")
    args = parser.parse_args(argv)
    apps: dict[str, str] | None = None
    if args.app:
        pairs = [item.split(":", 1) for item in args.app]
        if any(len(pair) != 2 or not all(pair) for pair in pairs):
            parser.error("--app takes APPID:SECRET")
        apps = {appid: secret for appid, secret in pairs}
    emulator = Emulator(apps, token_ttl=args.token_ttl, code_ttl=args.code_ttl)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    handler = _QuietRequestHandler if args.quiet else WSGIRequestHandler
    server = make_server(
        args.host, args.port, emulator.wsgi_app, threaded=True, request_handler=handler
    )
    log.info(
        "WeChat emulator on http://%s:%s for %s",
        args.host,
        server.server_port,
        ", ".join(emulator.apps),
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
