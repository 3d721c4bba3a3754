"""Batches of subscribe messages (`WeChatClient.send_subscribe_messages`) over libcurl.

Each message's answer comes back in the batch's order: None when WeChat accepted it, else the
error. Template data is checked before anything is sent; the access token is taken once and
replaced once when WeChat refuses it, and only the refused messages go again. A failure of
the way there says whether the request may have reached WeChat. The batch path reaches the
host as the single calls do (the session's proxy) and tells the observer of every request.
"""

from __future__ import annotations

import gzip
import json
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from tests.support.http import served
from tests.support.wechat import START, DevApi
from wechat.client import SUBSCRIBE_SEND, SubscribeMessage, WeChatClient
from wechat.errors import (
    AccessTokenInvalid,
    SubscriptionRefused,
    TemplateDataInvalid,
    TransportError,
)
from wechat.tokens import AccessToken, MemoryTokenCache

QUEUE_CALLED = {
    "character_string1": "A012",
    "thing2": "番禺区政务服务中心",
    "thing3": "3号窗口",
    "time4": "2024年5月1日 09:30",
}

Observed = list[tuple[str, str, float]]


@pytest.fixture(params=[False, True], ids=["in-process", "child-process"])
def make_client(
    request: pytest.FixtureRequest, make_client: Callable[..., WeChatClient]
) -> Iterator[Callable[..., WeChatClient]]:
    """Every test here runs with the batches sent from this process and from a child process
    (`wechat.batch_sender`): the same contract."""
    made: list[WeChatClient] = []

    def build(**overrides: Any) -> WeChatClient:
        overrides.setdefault("batch_process", request.param)
        made.append(make_client(**overrides))
        return made[-1]

    yield build
    for client in made:
        client.close()


def _called(number: int) -> dict[str, str]:
    return QUEUE_CALLED | {"character_string1": f"A{number:03d}"}


def _granted_users(dev: DevApi, count: int, grants: int = 1) -> list[str]:
    users = [dev.login()["openid"] for _ in range(count)]
    for user in users:
        dev.grant(user, "queue_called", count=grants)
    return users


def _cache_holding(token: str) -> MemoryTokenCache:
    """A token cache that already holds `token`, fresh by the test clock: no fetch needed."""
    cache = MemoryTokenCache()
    cache.refresh(
        lambda: AccessToken(value=token, expires_at=START + 7200), is_fresh=lambda _: False
    )
    return cache


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- delivery ------------------------------------------------------------------------------


def test_a_batch_of_granted_messages_is_delivered_once_each(
    wx_client: WeChatClient, dev: DevApi
) -> None:
    users = _granted_users(dev, 12)
    messages = [
        SubscribeMessage(
            user, "queue_called", _called(number), page=f"pages/queue/ticket?id={number}&from=推送"
        )
        for number, user in enumerate(users)
    ]

    answers = wx_client.send_subscribe_messages(messages, connections=4)

    assert answers == [None] * 12
    for number, user in enumerate(users):
        [message] = dev.messages(user)
        assert message["data"] == _called(number)
        assert message["page"] == f"pages/queue/ticket?id={number}&from=推送"
        assert message["template_id"] == "queue_called"
    assert dev.calls("subscribe_send") == 12
    assert dev.calls("stable_token") == 1


def test_mixed_outcomes_come_back_in_the_batchs_order(wx_client: WeChatClient, dev: DevApi) -> None:
    granted, other_granted, checked = _granted_users(dev, 3)
    ungranted, other_ungranted = (dev.login()["openid"] for _ in range(2))
    too_long = QUEUE_CALLED | {"thing2": "番禺区政务服务中心二楼东侧综合受理大厅北区"}
    messages = [
        SubscribeMessage(granted, "queue_called", QUEUE_CALLED),
        SubscribeMessage(ungranted, "queue_called", QUEUE_CALLED),
        SubscribeMessage(checked, "queue_called", too_long),
        SubscribeMessage(other_granted, "queue_called", QUEUE_CALLED),
        SubscribeMessage(other_ungranted, "queue_called", QUEUE_CALLED),
    ]

    answers = wx_client.send_subscribe_messages(messages, connections=2)

    assert answers[0] is None and answers[3] is None
    for refused in (answers[1], answers[4]):
        assert isinstance(refused, SubscriptionRefused)
        assert refused.errcode == 43101
    invalid = answers[2]
    assert isinstance(invalid, TemplateDataInvalid)
    assert set(invalid.problems) == {"thing2"}
    # The message that broke the rules was never sent; the others were, once each.
    assert dev.calls("subscribe_send") == 4
    assert dev.messages(checked) == []
    assert [len(dev.messages(user)) for user in (granted, other_granted)] == [1, 1]


# -- the access token ----------------------------------------------------------------------


def test_a_token_wechat_does_not_know_is_replaced_once_and_every_message_sent_again(
    make_client: Callable[..., WeChatClient], dev: DevApi
) -> None:
    # Another deployment's token, or one from before an emulator restart: WeChat says 40001.
    cache = _cache_holding("token-wechat-never-issued")
    client = make_client(token_cache=cache)
    users = _granted_users(dev, 5, grants=2)  # a second send would be delivered too

    answers = client.send_subscribe_messages(
        [SubscribeMessage(user, "queue_called", QUEUE_CALLED) for user in users], connections=3
    )

    assert answers == [None] * 5
    assert [len(dev.messages(user)) for user in users] == [1] * 5
    assert dev.calls("subscribe_send") == 10
    # WeChat handed out a token other than the refused one: no forced refresh was needed.
    assert dev.calls("stable_token") == 1
    stored = cache.load()
    assert stored is not None and stored.value != "token-wechat-never-issued"


def test_only_the_messages_refused_for_the_token_are_sent_again(
    wx_client: WeChatClient, dev: DevApi
) -> None:
    users = _granted_users(dev, 5, grants=2)  # a second send would be delivered too
    first = wx_client.access_token()
    dev.fault("subscribe_send", errcode=40001, times=2)

    answers = wx_client.send_subscribe_messages(
        [SubscribeMessage(user, "queue_called", QUEUE_CALLED) for user in users], connections=5
    )

    assert answers == [None] * 5
    assert [len(dev.messages(user)) for user in users] == [1] * 5
    assert dev.calls("subscribe_send") == 7
    # WeChat still handed out the refused token, so the replacement was forced.
    assert wx_client.access_token() != first
    assert dev.calls("stable_token") == 3


def test_a_token_refused_again_after_its_replacement_is_the_answer(
    wx_client: WeChatClient, dev: DevApi
) -> None:
    users = _granted_users(dev, 3)
    dev.fault("subscribe_send", errcode=40001, times=6)

    answers = wx_client.send_subscribe_messages(
        [SubscribeMessage(user, "queue_called", QUEUE_CALLED) for user in users]
    )

    assert all(isinstance(answer, AccessTokenInvalid) for answer in answers)
    assert len(answers) == 3
    assert dev.calls("subscribe_send") == 6
    assert dev.stats()["messages_sent"] == 0


def test_a_token_that_cannot_be_replaced_still_leaves_the_delivered_messages_reported(
    wx_client: WeChatClient, dev: DevApi
) -> None:
    # The drain records an error raised for the whole batch as every message's answer, and
    # retries transient ones: messages WeChat accepted must come back as accepted.
    users = _granted_users(dev, 3)
    wx_client.access_token()
    dev.fault("subscribe_send", errcode=40001, times=1)
    dev.fault("stable_token", errcode=-1, times=3)  # busy beyond the retries: no new token

    answers = wx_client.send_subscribe_messages(
        [SubscribeMessage(user, "queue_called", QUEUE_CALLED) for user in users]
    )

    delivered = [len(dev.messages(user)) == 1 for user in users]
    assert delivered.count(True) == 2
    for answer, was_delivered in zip(answers, delivered, strict=True):
        if was_delivered:
            assert answer is None
        else:  # never sent with a good token: to be tried again, not in doubt
            assert isinstance(answer, TransportError)
            assert answer.maybe_processed is False


# -- the way there -------------------------------------------------------------------------


def test_a_host_refusing_connections_fails_every_message_as_surely_not_processed(
    make_client: Callable[..., WeChatClient],
) -> None:
    client = make_client(
        token_cache=_cache_holding("token-in-the-cache"),
        base_url=f"http://127.0.0.1:{_closed_port()}",
    )

    answers = client.send_subscribe_messages(
        [SubscribeMessage(f"oUser{number}", "queue_called", QUEUE_CALLED) for number in range(3)],
        connections=2,
    )

    assert len(answers) == 3
    for answer in answers:
        assert isinstance(answer, TransportError)
        assert not answer.maybe_processed
        assert SUBSCRIBE_SEND in str(answer)
        assert "token-in-the-cache" not in str(answer)


class _HangUp(socketserver.BaseRequestHandler):
    """Reads one whole HTTP request, keeps its body, and closes the connection unanswered."""

    server: _HangUpServer

    def handle(self) -> None:
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = self.request.recv(65536)
            if not chunk:
                break
            body += chunk
        with self.server.lock:
            self.server.bodies.append(body)


class _HangUpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HangUp)
        self.lock = threading.Lock()
        self.bodies: list[bytes] = []


@pytest.fixture
def hang_up_server() -> Iterator[_HangUpServer]:
    server = _HangUpServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_server_closing_the_connection_unanswered_fails_every_message_as_maybe_processed(
    make_client: Callable[..., WeChatClient], hang_up_server: _HangUpServer
) -> None:
    client = make_client(
        token_cache=_cache_holding("token-in-the-cache"),
        base_url=f"http://127.0.0.1:{hang_up_server.server_address[1]}",
    )
    users = [f"oUser{number}" for number in range(3)]

    answers = client.send_subscribe_messages(
        [SubscribeMessage(user, "queue_called", QUEUE_CALLED) for user in users], connections=2
    )

    assert len(answers) == 3
    for answer in answers:
        assert isinstance(answer, TransportError)
        assert answer.maybe_processed
        assert SUBSCRIBE_SEND in str(answer)
    # Every request did arrive whole: "maybe processed" is the truth.
    received = {json.loads(body)["touser"] for body in hang_up_server.bodies}
    assert received == set(users)


def test_the_sessions_proxy_is_used_by_the_batch_too(
    proxied_client: WeChatClient, dev: DevApi
) -> None:
    client = proxied_client
    users = _granted_users(dev, 2)

    answers = client.send_subscribe_messages(
        [SubscribeMessage(user, "queue_called", QUEUE_CALLED) for user in users]
    )

    assert answers == [None, None]
    assert [len(dev.messages(user)) for user in users] == [1, 1]


@pytest.fixture
def gzip_url() -> Iterator[str]:
    """A WeChat stand-in that compresses its JSON for clients that accept gzip, as many
    HTTP servers and proxies do."""

    @Request.application
    def wechat(request: Request) -> Response:
        if request.path == "/cgi-bin/stable_token":
            answer: dict[str, object] = {"access_token": "gzip-token", "expires_in": 7200}
        else:
            answer = {"errcode": 0, "errmsg": "ok", "msgid": 1}
        body = json.dumps(answer).encode()
        response = Response(body, content_type="application/json")
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            response.set_data(gzip.compress(body))
            response.headers["Content-Encoding"] = "gzip"
        return response

    with served(wechat) as base_url:
        yield base_url


def test_a_compressed_answer_is_read_as_the_single_send_reads_it(
    make_client: Callable[..., WeChatClient], gzip_url: str
) -> None:
    client = make_client(base_url=gzip_url)
    message = SubscribeMessage("oUser", "queue_called", QUEUE_CALLED)
    client.send_subscribe_message(message.touser, message.template_id, message.data)

    assert client.send_subscribe_messages([message]) == [None]


# -- the observer and the edges ------------------------------------------------------------


def test_the_observer_is_told_of_every_request_with_its_errcode_label(
    make_client: Callable[..., WeChatClient], dev: DevApi
) -> None:
    observed: Observed = []
    client = make_client(observe=lambda *call: observed.append(call))
    client.access_token()
    observed.clear()
    granted = _granted_users(dev, 2)
    ungranted = dev.login()["openid"]
    invalid = QUEUE_CALLED | {"time4": "明天上午"}
    messages = [
        SubscribeMessage(granted[0], "queue_called", QUEUE_CALLED),
        SubscribeMessage(ungranted, "queue_called", QUEUE_CALLED),
        SubscribeMessage(granted[1], "queue_called", invalid),  # checked here, never sent
        SubscribeMessage(granted[1], "queue_called", QUEUE_CALLED),
    ]

    client.send_subscribe_messages(messages, connections=2)

    assert len(observed) == 3
    assert {path for path, _, _ in observed} == {SUBSCRIBE_SEND}
    assert sorted(label for _, label, _ in observed) == ["0", "0", "43101"]
    assert all(seconds >= 0 for _, _, seconds in observed)


def test_the_observer_is_told_of_the_resent_requests_too(
    make_client: Callable[..., WeChatClient], dev: DevApi
) -> None:
    observed: Observed = []
    client = make_client(observe=lambda *call: observed.append(call))
    users = _granted_users(dev, 3)
    dev.fault("subscribe_send", errcode=40001, times=1)

    client.send_subscribe_messages(
        [SubscribeMessage(user, "queue_called", QUEUE_CALLED) for user in users]
    )

    sends = sorted(label for path, label, _ in observed if path == SUBSCRIBE_SEND)
    assert sends == ["0", "0", "0", "40001"]


def test_an_empty_batch_asks_wechat_nothing(
    make_client: Callable[..., WeChatClient], dev: DevApi
) -> None:
    observed: Observed = []
    client = make_client(observe=lambda *call: observed.append(call))

    assert client.send_subscribe_messages([]) == []

    assert observed == []
    assert dev.calls("stable_token") == 0
    assert dev.calls("subscribe_send") == 0


def test_a_batch_whose_every_message_breaks_the_rules_asks_wechat_nothing(
    make_client: Callable[..., WeChatClient], dev: DevApi
) -> None:
    # As a single send checks the data before taking a token (test_subscribe.py).
    observed: Observed = []
    client = make_client(observe=lambda *call: observed.append(call))
    [user] = _granted_users(dev, 1)
    invalid = QUEUE_CALLED | {"time4": "明天上午"}

    answers = client.send_subscribe_messages([SubscribeMessage(user, "queue_called", invalid)])

    assert len(answers) == 1 and isinstance(answers[0], TemplateDataInvalid)
    assert observed == []
    assert dev.calls("stable_token") == 0
