"""Which failures are retried, how often, with what backoff; and what reaches the logs."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator

import pytest
from werkzeug.wrappers import Request, Response

from tests.support.http import served
from tests.support.wechat import APPID, SECRET, DevApi, FakeClock
from wechat.client import WeChatClient
from wechat.emulator import Emulator, serve_in_thread
from wechat.errors import InvalidCode, RateLimited, SystemBusy, TransportError, WeChatError


def test_busy_wechat_is_asked_again_with_growing_backoff(
    wx_client: WeChatClient, dev: DevApi, sleeps: list[float]
) -> None:
    # -1 means WeChat did nothing, so even a single-use code may be sent again.
    dev.fault("jscode2session", errcode=-1, times=2)
    login = dev.login()

    assert wx_client.code_to_session(login["code"]).openid == login["openid"]
    assert sleeps == [0.2, 0.4]
    assert dev.calls("jscode2session") == 3


def test_busy_beyond_the_retries_raises_system_busy(
    wx_client: WeChatClient, dev: DevApi, sleeps: list[float]
) -> None:
    dev.fault("jscode2session", errcode=-1, times=3)

    with pytest.raises(SystemBusy):
        wx_client.code_to_session(dev.login()["code"])
    assert sleeps == [0.2, 0.4]


def test_rate_limit_that_persists_raises_rate_limited(
    wx_client: WeChatClient, dev: DevApi, sleeps: list[float]
) -> None:
    dev.fault("jscode2session", errcode=45011, times=5)

    with pytest.raises(RateLimited) as raised:
        wx_client.code_to_session(dev.login()["code"])

    assert raised.value.errcode == 45011
    assert sleeps == [0.2, 0.4]
    assert dev.calls("jscode2session") == 3


def test_refused_code_is_not_asked_again(wx_client: WeChatClient, sleeps: list[float]) -> None:
    with pytest.raises(InvalidCode):
        wx_client.code_to_session("no-such-code")
    assert sleeps == []


@pytest.fixture
def limited_url() -> Iterator[tuple[str, FakeClock]]:
    clock = FakeClock()
    emulator = Emulator(apps={APPID: SECRET}, rate_limits={"jscode2session": 2}, clock=clock)
    server, base_url = serve_in_thread(emulator=emulator)
    yield base_url, clock
    server.shutdown()
    server.server_close()


def test_per_minute_quota_refuses_until_the_minute_is_over(
    make_client: Callable[..., WeChatClient], limited_url: tuple[str, FakeClock]
) -> None:
    base_url, clock = limited_url
    client = make_client(base_url=base_url, max_retries=0, clock=clock)
    dev = DevApi(base_url)
    client.code_to_session(dev.login()["code"])
    client.code_to_session(dev.login()["code"])

    code = dev.login()["code"]
    with pytest.raises(RateLimited):
        client.code_to_session(code)

    clock.advance(60)
    client.code_to_session(code)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_wechat_is_retried_even_for_single_use_codes(
    make_client: Callable[..., WeChatClient], sleeps: list[float]
) -> None:
    # A refused connection never reached WeChat, so the code is still unused.
    client = make_client(base_url=f"http://127.0.0.1:{_closed_port()}")

    with pytest.raises(TransportError) as raised:
        client.code_to_session("some-code")

    assert not raised.value.maybe_processed
    assert sleeps == [0.2, 0.4]
    assert SECRET not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.fixture
def bad_gateway_url() -> Iterator[str]:
    @Request.application
    def gateway(request: Request) -> Response:
        return Response("<html>502 Bad Gateway</html>", status=502, content_type="text/html")

    with served(gateway) as base_url:
        yield base_url


def test_non_json_server_error_is_a_transport_error(
    make_client: Callable[..., WeChatClient], bad_gateway_url: str, sleeps: list[float]
) -> None:
    client = make_client(base_url=bad_gateway_url)

    with pytest.raises(TransportError):
        client.access_token()
    assert sleeps == [0.2, 0.4]


def test_wrong_base_url_is_not_mistaken_for_busy(
    make_client: Callable[..., WeChatClient], emu_url: str, sleeps: list[float]
) -> None:
    client = make_client(base_url=f"{emu_url}/not-wechat")

    with pytest.raises(WeChatError, match="404"):
        client.access_token()
    assert sleeps == []


def test_logs_show_no_secret_session_key_or_phone_number(
    make_client: Callable[..., WeChatClient], dev: DevApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="wechat")
    client = make_client()
    dev.fault("jscode2session", errcode=-1)
    dev.fault("getuserphonenumber", errcode=40001)

    session = client.code_to_session(dev.login()["code"])
    phone = client.get_phone_number(dev.phone_code("13800138000"))

    logged = "\n".join(
        f"{record.getMessage()} {record.__dict__}"
        for record in caplog.records
        if record.name.startswith("wechat")
    )
    assert logged  # the retry and the token replacement were logged
    for secret in (SECRET, session.session_key, phone.pure_phone_number, client.access_token()):
        assert secret not in logged
