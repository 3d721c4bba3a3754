"""The client's HTTP transport: the session's own urllib3 pool, called without requests' layers.

What the session was configured with (proxy, headers) must still hold, and the pool must
survive the adapter replacing it.
"""

from __future__ import annotations

from collections.abc import Callable

import requests

from tests.support.wechat import DevApi
from wechat.client import WeChatClient

QUEUE_FIELDS = {
    "character_string1": "A012",
    "thing2": "番禺区政务服务中心",
    "thing3": "3号窗口",
    "time4": "2024年5月1日 09:30",
}


def test_a_message_keeps_its_chinese_text_and_page(
    make_client: Callable[..., WeChatClient], dev: DevApi
) -> None:
    citizen = dev.login()["openid"]
    dev.grant(citizen, "queue_called")

    make_client().send_subscribe_message(
        citizen, "queue_called", QUEUE_FIELDS, page="pages/queue/ticket?id=12&from=推送"
    )

    [message] = dev.messages(citizen)
    assert message["data"] == QUEUE_FIELDS
    assert message["page"] == "pages/queue/ticket?id=12&from=推送"


def test_a_pool_the_adapter_dropped_is_replaced_without_an_error(
    make_client: Callable[..., WeChatClient], dev: DevApi
) -> None:
    session = requests.Session()
    client = make_client(session=session)
    client.access_token()
    # The pool manager closes pools it evicts (it keeps a few hosts); clear() closes them all.
    session.get_adapter("http://").poolmanager.clear()  # type: ignore[attr-defined]

    assert client.access_token()  # served from the cache: no call
    citizen = dev.login()["openid"]
    dev.grant(citizen, "queue_called")
    client.send_subscribe_message(citizen, "queue_called", QUEUE_FIELDS)

    assert len(dev.messages(citizen)) == 1


def test_the_sessions_proxy_is_used(proxied_client: WeChatClient, dev: DevApi) -> None:
    client = proxied_client
    citizen = dev.login()["openid"]
    dev.grant(citizen, "queue_called")

    client.send_subscribe_message(citizen, "queue_called", QUEUE_FIELDS)

    assert len(dev.messages(citizen)) == 1
