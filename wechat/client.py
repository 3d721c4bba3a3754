"""Client for the WeChat mini-program server API (login, tokens, phone, messages, codes)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlencode, urlsplit

import requests
import urllib3
from urllib3.exceptions import ClosedPoolError, ConnectTimeoutError, HTTPError

from wechat import crypto, templates, wxacode
from wechat.batch_sender import SenderProcess
from wechat.batch_transport import BatchTransport, Exchange, TransportSettings
from wechat.errors import (
    AccessTokenInvalid,
    InvalidArgument,
    PhoneDataInvalid,
    TemplateDataInvalid,
    TransportError,
    WeChatError,
    errcode_label,
    error_from_response,
)
from wechat.tokens import AccessToken, TokenCache

log = logging.getLogger(__name__)

WECHAT_API_BASE = "https://api.weixin.qq.com"

MiniProgramState = Literal["developer", "trial", "formal"]
Lang = Literal["zh_CN", "en_US", "zh_HK", "zh_TW"]
EnvVersion = Literal["release", "trial", "develop"]

T = TypeVar("T")

# Told of every HTTP call: (API path, errcode label from `errors.errcode_label`, seconds).
# The app passes its metrics recorder; this package stays free of any metrics library.
CallObserver = Callable[[str, str, float], None]


@dataclass(frozen=True)
class LoginSession:
    """What jscode2session answers for one wx.login code."""

    openid: str
    # The key to the user's encrypted data: never shown in logs or reprs.
    session_key: str = field(repr=False)
    unionid: str | None = None


@dataclass(frozen=True)
class PhoneInfo:
    """A user's phone number as WeChat vouches for it."""

    phone_number: str = field(repr=False)
    pure_phone_number: str = field(repr=False)
    country_code: str


class MiniProgramApi(Protocol):
    """The mini-program server API as the app uses it; WeChatClient implements it."""

    def code_to_session(self, js_code: str) -> LoginSession:
        """Exchange a wx.login code for the user's openid and session key."""
        ...

    def access_token(self) -> str:
        """Return a valid access token, refreshing the shared one when due."""
        ...

    def get_phone_number(self, code: str) -> PhoneInfo:
        """Exchange a getPhoneNumber button code for the user's phone number."""
        ...

    def decrypt_phone_data(self, session_key: str, encrypted_data: str, iv: str) -> PhoneInfo:
        """Decrypt phone data sent by the legacy encryptedData scheme."""
        ...

    def send_subscribe_message(
        self,
        touser: str,
        template_id: str,
        data: Mapping[str, str],
        page: str | None = None,
        miniprogram_state: MiniProgramState = "formal",
        lang: Lang = "zh_CN",
    ) -> None:
        """Send one subscribe message to a user who granted the template."""
        ...

    def get_unlimited_code(
        self,
        scene: str,
        page: str | None = None,
        width: int = 430,
        check_path: bool = False,
        env_version: EnvVersion = "release",
    ) -> bytes:
        """Return a mini-program code image for a scene."""
        ...


class WeChatClient:
    """Calls the WeChat mini-program server API on behalf of one app."""

    def __init__(
        self,
        session: requests.Session,
        *,
        base_url: str,
        appid: str,
        secret: str,
        token_cache: TokenCache,
        timeout: float = 5.0,
        max_retries: int = 2,
        backoff: float = 0.2,
        refresh_margin: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        observe: CallObserver | None = None,
        batch_process: bool = False,
    ) -> None:
        self._observe = observe
        self._base_url = base_url.rstrip("/")
        self._http = _Transport(session, self._base_url, timeout)
        # Made on the first batch of sends (`send_subscribe_messages`): in this process, or
        # from a child of its own (`batch_sender`).
        self._batch_process = batch_process
        self._batch: BatchTransport | SenderProcess | None = None
        self._batch_lock = threading.Lock()
        self._appid = appid
        self._secret = secret
        self._tokens = token_cache
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = backoff
        # WeChat's normal mode renews the stable token in its last 5 minutes, so refreshing
        # that early gets a new token instead of the old one again.
        self._refresh_margin = refresh_margin
        self._sleep = sleep
        self._clock = clock

    def __repr__(self) -> str:
        return f"<WeChatClient appid={self._appid} base_url={self._base_url}>"

    @property
    def appid(self) -> str:
        """The appid this client acts for."""
        return self._appid

    # -- login -------------------------------------------------------------------------

    def code_to_session(self, js_code: str) -> LoginSession:
        """Exchange a wx.login code for the user's openid and session key."""
        params = {
            "appid": self._appid,
            "secret": self._secret,
            "js_code": js_code,
            "grant_type": "authorization_code",
        }
        # Not idempotent: a code works once, so a lost answer cannot be asked for again.
        payload = self._call(
            "GET", "/sns/jscode2session", params=params, parse=_parse_json, idempotent=False
        )
        unionid = payload.get("unionid")
        return LoginSession(
            openid=_text(payload, "openid"),
            session_key=_text(payload, "session_key"),
            unionid=unionid if isinstance(unionid, str) and unionid else None,
        )

    # -- access token --------------------------------------------------------------------

    def access_token(self) -> str:
        """Return a valid access token, refreshing the shared one when due."""
        cached = self._tokens.load()
        if cached is not None and self._is_fresh(cached):
            return cached.value
        token = self._tokens.refresh(
            lambda: self._fetch_token(force=False), is_fresh=self._is_fresh
        )
        return token.value

    def _is_fresh(self, token: AccessToken) -> bool:
        return token.expires_at - self._refresh_margin > self._clock()

    def _replace_token(self, rejected: str) -> str:
        """Get a token other than the one WeChat just rejected, under the shared lock."""

        def fetch() -> AccessToken:
            # Another app server may have force-refreshed: the normal mode then hands out
            # the new token. Forcing is limited to 20 a day, so only force when WeChat still
            # hands out the very token it rejects.
            token = self._fetch_token(force=False)
            if token.value == rejected:
                token = self._fetch_token(force=True)
            return token

        # "Fresh" excludes the rejected token, so if another process already replaced it
        # we use theirs instead of refreshing again.
        token = self._tokens.refresh(
            fetch, is_fresh=lambda t: t.value != rejected and self._is_fresh(t)
        )
        return token.value

    def _fetch_token(self, *, force: bool) -> AccessToken:
        body = {
            "grant_type": "client_credential",
            "appid": self._appid,
            "secret": self._secret,
            "force_refresh": force,
        }
        # Read the clock before asking, so network time only shortens the token's life.
        asked_at = self._clock()
        # Safe to repeat: a forced refresh repeated within 30 s returns the same token.
        payload = self._call(
            "POST", "/cgi-bin/stable_token", body=body, parse=_parse_json, idempotent=True
        )
        expires_in = payload.get("expires_in")
        if not isinstance(expires_in, int | float):
            raise WeChatError(None, "stable_token answer lacks expires_in")
        log.info("fetched WeChat access token (force=%s), valid %ss", force, expires_in)
        return AccessToken(value=_text(payload, "access_token"), expires_at=asked_at + expires_in)

    # -- phone numbers -------------------------------------------------------------------

    def get_phone_number(self, code: str) -> PhoneInfo:
        """Exchange a getPhoneNumber button code for the user's phone number."""
        payload = self._call_with_token(
            "/wxa/business/getuserphonenumber",
            {"code": code},
            parse=_parse_json,
            idempotent=False,
        )
        info = payload.get("phone_info")
        if not isinstance(info, dict):
            raise WeChatError(None, "getuserphonenumber answer lacks phone_info")
        return self._phone_info(info)

    def decrypt_phone_data(self, session_key: str, encrypted_data: str, iv: str) -> PhoneInfo:
        """Decrypt phone data sent by the legacy encryptedData scheme."""
        try:
            payload = crypto.decrypt_user_data(session_key, encrypted_data, iv)
        except crypto.DecryptError as exc:
            raise PhoneDataInvalid(f"cannot decrypt phone data: {exc}") from exc
        return self._phone_info(payload)

    def _phone_info(self, info: Mapping[str, Any]) -> PhoneInfo:
        # The watermark proves the data was issued to this app, not replayed from another.
        watermark = info.get("watermark")
        if not isinstance(watermark, dict) or watermark.get("appid") != self._appid:
            raise PhoneDataInvalid("phone data watermark is not for this app")
        fields = ("phoneNumber", "purePhoneNumber", "countryCode")
        values = [info.get(name) for name in fields]
        if not all(isinstance(value, str) and value for value in values):
            raise PhoneDataInvalid("phone data lacks a number or country code")
        phone_number, pure_phone_number, country_code = (str(value) for value in values)
        return PhoneInfo(
            phone_number=phone_number,
            pure_phone_number=pure_phone_number,
            country_code=country_code,
        )

    # -- subscribe messages --------------------------------------------------------------

    def send_subscribe_message(
        self,
        touser: str,
        template_id: str,
        data: Mapping[str, str],
        page: str | None = None,
        miniprogram_state: MiniProgramState = "formal",
        lang: Lang = "zh_CN",
    ) -> None:
        """Send one subscribe message to a user who granted the template."""
        message = SubscribeMessage(touser, template_id, data, page, miniprogram_state, lang)
        problems = templates.check_template_data(data)
        if problems:
            raise TemplateDataInvalid(problems)
        # Not idempotent: a repeat would send twice and spend a second grant of the user.
        self._call_with_token(SUBSCRIBE_SEND, message.body(), parse=_parse_json, idempotent=False)

    def send_subscribe_messages(
        self,
        messages: Sequence[SubscribeMessage],
        *,
        connections: int = 8,
        on_ready_for_next: Callable[[], None] | None = None,
    ) -> list[WeChatError | None]:
        """Send many subscribe messages, `connections` at a time; per message, in order, the
        error WeChat (or the way there) answered with, or None when WeChat accepted it.

        WeChat's and the network's failures are answers, never raised, so one failure cannot
        hide what happened to the rest of the batch. A message is sent at most once (but see
        `batch_transport` on libcurl's resend over a dead kept-alive connection), except those
        WeChat refused for the access token, which it did not act on: they go again once, with
        a new token. Nothing else is retried here: a send is not idempotent, and the caller's
        outbox knows which failures to try again later. Without an access token the messages
        are not sent: their answer says so (`maybe_processed` False).

        `on_ready_for_next`, if given, is called once the transport can take another batch:
        from a child process as soon as the first message has left, in this process once all
        are answered (`batch_sender`). The resend of refused tokens comes after it.
        """
        answers: list[WeChatError | None] = [None] * len(messages)
        bodies: dict[int, bytes] = {}
        for index, message in enumerate(messages):
            problems = templates.check_template_data(message.data)
            if problems:
                answers[index] = TemplateDataInvalid(problems)
            else:
                bodies[index] = encode_json(message.body())
        pending = list(bodies)
        token: str | None = None
        for resend in (False, True):  # the resend: only the messages refused for the token
            if not pending:
                break
            try:
                token = self._replace_token(rejected=token) if token else self.access_token()
            except WeChatError as error:
                unsent = TransportError(f"no access token: {error}", maybe_processed=False)
                for index in pending:
                    answers[index] = unsent
                break
            if resend:
                log.info("WeChat refused the access token on %d sends; sent again", len(pending))
            sent = self._post_many(
                SUBSCRIBE_SEND,
                token,
                [bodies[i] for i in pending],
                connections,
                on_ready_for_next=None if resend else on_ready_for_next,
            )
            for index, answer in zip(pending, sent, strict=True):
                answers[index] = answer
            pending = [index for index in pending if isinstance(answers[index], AccessTokenInvalid)]
        return answers

    def close(self) -> None:
        """Stop the batch sender's child process, if one was started (it also stops by
        itself when this process exits)."""
        with self._batch_lock:
            if isinstance(self._batch, SenderProcess):
                self._batch.close()
            self._batch = None

    def _post_many(
        self,
        path: str,
        token: str,
        bodies: list[bytes],
        connections: int,
        on_ready_for_next: Callable[[], None] | None = None,
    ) -> list[WeChatError | None]:
        """POST the bodies to an API path with the token; each one observed like `_send`."""
        with self._batch_lock:
            if self._batch is None:
                make = SenderProcess if self._batch_process else BatchTransport
                self._batch = make(self._http.batch_settings)
        url = f"{self._base_url}{path}?{urlencode({'access_token': token})}"
        errors: list[WeChatError | None] = []
        answers = self._batch.post_many(
            url, bodies, connections=connections, on_ready_for_next=on_ready_for_next
        )
        for answer in answers:
            error = _answer_error(answer, path, self._http.reply_path(path))
            errors.append(error)
            if self._observe is not None:
                self._observe(path, errcode_label(error), answer.seconds)
        return errors

    # -- mini-program codes ----------------------------------------------------------------

    def get_unlimited_code(
        self,
        scene: str,
        page: str | None = None,
        width: int = 430,
        check_path: bool = False,
        env_version: EnvVersion = "release",
    ) -> bytes:
        """Return a mini-program code image (PNG bytes) that opens `page` with `scene`."""
        problem = wxacode.scene_problem(scene)
        if problem is not None:
            raise InvalidArgument(40169, problem)
        if page is not None and (problem := wxacode.page_problem(page)) is not None:
            raise InvalidArgument(41030, problem)
        if not wxacode.MIN_WIDTH <= width <= wxacode.MAX_WIDTH:
            raise InvalidArgument(
                40097, f"width must be {wxacode.MIN_WIDTH}..{wxacode.MAX_WIDTH} pixels"
            )
        body: dict[str, Any] = {
            "scene": scene,
            "width": width,
            "check_path": check_path,
            "env_version": env_version,
        }
        if page is not None:
            body["page"] = page
        return self._call_with_token(
            "/wxa/getwxacodeunlimit", body, parse=_parse_image, idempotent=True
        )

    # -- transport -------------------------------------------------------------------------

    def _call_with_token(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        parse: Callable[[_Reply], T],
        idempotent: bool,
    ) -> T:
        def call(token: str) -> T:
            return self._call(
                "POST",
                path,
                params={"access_token": token},
                body=body,
                parse=parse,
                idempotent=idempotent,
            )

        token = self.access_token()
        try:
            return call(token)
        except AccessTokenInvalid as exc:
            # WeChat refused the call before doing anything, so even a send may be repeated.
            log.info("WeChat refused the access token on %s (%s); replacing it", path, exc.errcode)
            return call(self._replace_token(rejected=token))

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        parse: Callable[[_Reply], T],
        idempotent: bool,
    ) -> T:
        attempt = 0
        while True:
            try:
                return self._send(method, path, params=params, body=body, parse=parse)
            except WeChatError as exc:
                if attempt >= self._max_retries or not _retryable(exc, idempotent=idempotent):
                    raise
                delay = self._backoff * 2**attempt
                log.warning("WeChat %s failed (%s); retrying in %.2fs", path, exc, delay)
                self._sleep(delay)
                attempt += 1

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        parse: Callable[[_Reply], T],
    ) -> T:
        """The one HTTP call to WeChat: every API and every retry passes here, observed."""
        started = time.perf_counter()
        outcome = "bad_answer"  # unless the answer parses, or fails as WeChat said
        try:
            try:
                reply = self._http.request(method, path, params=params, body=body)
            except (HTTPError, OSError) as exc:
                # Raised without its cause: the exception quotes the URL, whose query carries
                # the app secret or the access token, and tracebacks end up in logs.
                raise TransportError(
                    f"{type(exc).__name__} calling {path}", maybe_processed=_may_have_arrived(exc)
                ) from None
            result = parse(reply)
            outcome = errcode_label(None)
            return result
        except WeChatError as exc:
            outcome = errcode_label(exc)
            raise
        finally:
            if self._observe is not None:
                # `path` is one of this module's literals: a bounded label, never a token.
                self._observe(path, outcome, time.perf_counter() - started)


SUBSCRIBE_SEND = "/cgi-bin/message/subscribe/send"


@dataclass(frozen=True)
class SubscribeMessage:
    """One subscribe message: to whom, which template, its data and the page it opens."""

    touser: str
    template_id: str
    data: Mapping[str, str]
    page: str | None = None
    miniprogram_state: MiniProgramState = "formal"
    lang: Lang = "zh_CN"

    def body(self) -> dict[str, Any]:
        """The request body subscribeMessage.send takes."""
        body: dict[str, Any] = {
            "touser": self.touser,
            "template_id": self.template_id,
            "data": {key: {"value": value} for key, value in self.data.items()},
            "miniprogram_state": self.miniprogram_state,
            "lang": self.lang,
        }
        if self.page is not None:
            body["page"] = self.page
        return body


def _answer_error(answer: Exchange, path: str, reply_path: str) -> WeChatError | None:
    """What a batch's answer to an API path means: None when WeChat accepted, else its error."""
    if answer.failure is not None:
        return TransportError(
            f"{answer.failure.errmsg} calling {path}",
            maybe_processed=answer.failure.maybe_processed,
        )
    headers = {"Content-Type": answer.content_type}
    try:
        _parse_json(_Reply(answer.status, headers, answer.body, reply_path))
    except WeChatError as error:
        return error
    return None


@dataclass(frozen=True)
class _Reply:
    """What WeChat answered: status, headers, the (decoded) body, and the API path asked."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    path: str


class _Transport:
    """HTTP to the API's host through the urllib3 pool `session` itself would use.

    requests builds, merges and re-checks a request's settings on every call (about 0.3 ms
    of CPU, a third of a push worker's cost per message); the pool, its keep-alive
    connections, TLS settings and proxy are the session's own, taken once from it here
    (with the environment's proxy and CA settings when the session trusts it). The body is
    encoded once, as compact UTF-8 JSON. No retries or redirects at this level: the client
    decides what may be repeated.
    """

    def __init__(self, session: requests.Session, base_url: str, timeout: float) -> None:
        probe = requests.Request("POST", base_url + "/").prepare()
        settings = session.merge_environment_settings(probe.url, {}, None, None, None)
        adapter = session.get_adapter(base_url + "/")
        if not isinstance(adapter, requests.adapters.HTTPAdapter):
            raise TypeError(f"{type(adapter).__name__} is not an HTTPAdapter")

        def connect() -> urllib3.HTTPConnectionPool:
            pool = adapter.get_connection_with_tls_context(
                probe, settings["verify"], settings["proxies"], settings["cert"]
            )
            assert isinstance(pool, urllib3.HTTPConnectionPool)  # nosec B101  # HTTP(S) pools only
            return pool

        self._connect = connect
        # The base URL's own path leads every API path; a proxied plain-HTTP request names
        # the whole URL, as requests sends it.
        self._path = urlsplit(base_url).path.rstrip("/")
        whole = adapter.request_url(probe, settings["proxies"]) != probe.path_url
        self._prefix = base_url if whole else self._path
        self._headers = {key: str(value) for key, value in session.headers.items()}
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        # The same host reached the same way by the batch sends (`batch_transport`).
        self.batch_settings = TransportSettings(
            headers=self._headers,
            timeout=timeout,
            verify=True if settings["verify"] is None else settings["verify"],
            cert=settings["cert"],
            proxy=requests.utils.select_proxy(base_url + "/", settings["proxies"]),
        )
        self._lock = threading.Lock()
        self._pool = self._connect()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
    ) -> _Reply:
        url = self._prefix + path
        if params:
            url += "?" + urlencode(params)
        payload = None if body is None else encode_json(body)
        pool = self._pool
        try:
            response = self._open(pool, method, url, payload)
        except ClosedPoolError:
            # The adapter dropped the pool (its manager holds a few hosts): take its new one.
            # Nothing was sent: a closed pool refuses before any connection is used.
            with self._lock:
                if self._pool is pool:
                    self._pool = self._connect()
            response = self._open(self._pool, method, url, payload)
        return _Reply(response.status, response.headers, response.data, self.reply_path(path))

    def reply_path(self, path: str) -> str:
        """An API path as the host sees it: under the base URL's own path."""
        return self._path + path

    def _open(
        self, pool: urllib3.HTTPConnectionPool, method: str, url: str, payload: bytes | None
    ) -> urllib3.BaseHTTPResponse:
        return pool.urlopen(
            method,
            url,
            body=payload,
            headers=self._json_headers if payload is not None else self._headers,
            retries=False,
            redirect=False,
            assert_same_host=False,
            timeout=self._timeout,
            preload_content=True,
            decode_content=True,
        )


def encode_json(body: Mapping[str, Any]) -> bytes:
    """A request body as WeChat takes it: compact UTF-8 JSON, Chinese left as it is."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _retryable(exc: WeChatError, *, idempotent: bool) -> bool:
    if not exc.transient:
        return False
    if isinstance(exc, TransportError) and exc.maybe_processed:
        return idempotent
    return True


def _may_have_arrived(exc: BaseException) -> bool:
    """Tell whether WeChat may have received (and acted on) the failed request."""
    # A connection refused, unroutable, unresolved or not made in time never carried it
    # (urllib3's NewConnectionError and NameResolutionError are ConnectTimeoutErrors).
    return not isinstance(exc, ConnectTimeoutError)


def _parse_json(reply: _Reply) -> dict[str, Any]:
    if reply.status == 404:
        # A wrong base URL or path; its errcode (-1) would otherwise read as "busy, retry".
        raise WeChatError(None, f"HTTP 404: no such API at {reply.path}")
    try:
        payload = json.loads(reply.body)
    except ValueError:
        raise _unreadable(reply) from None
    if not isinstance(payload, dict):
        raise _unreadable(reply)
    errcode = payload.get("errcode", 0)
    if errcode:
        errmsg = payload.get("errmsg")
        raise error_from_response(int(errcode), errmsg if isinstance(errmsg, str) else "")
    if reply.status >= 400:
        raise _unreadable(reply)
    return payload


def _parse_image(reply: _Reply) -> bytes:
    content_type = reply.headers.get("Content-Type", "")
    if reply.status < 400 and content_type.startswith("image/"):
        return reply.body
    _parse_json(reply)  # raises the error WeChat answered with
    raise WeChatError(None, "expected an image, got JSON without an errcode")


def _unreadable(reply: _Reply) -> WeChatError:
    what = f"HTTP {reply.status} answer without a usable JSON object"
    if reply.status >= 500:
        return TransportError(what)
    return WeChatError(None, what)


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise WeChatError(None, f"WeChat answer lacks {key}")
    return value
