"""Subscribe messages: grants, templates, and the field rules checked before sending."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.support.wechat import APPID, SECRET, DevApi
from wechat.client import WeChatClient
from wechat.emulator import Emulator, serve_in_thread
from wechat.errors import (
    InvalidArgument,
    InvalidTemplate,
    SubscriptionRefused,
    TemplateDataInvalid,
)
from wechat.templates import DEFAULT_TEMPLATES, TemplateSpec
from wechat.tokens import MemoryTokenCache

QUEUE_CALLED = {
    "character_string1": "A012",
    "thing2": "番禺区政务服务中心",
    "thing3": "3号窗口",
    "time4": "2024年5月1日 09:30",
}


@pytest.fixture
def citizen(dev: DevApi) -> str:
    return dev.login()["openid"]


def test_granted_message_is_delivered(wx_client: WeChatClient, dev: DevApi, citizen: str) -> None:
    dev.grant(citizen, "queue_called")

    wx_client.send_subscribe_message(
        citizen, "queue_called", QUEUE_CALLED, page="pages/queue/ticket?id=12"
    )

    [message] = dev.messages(touser=citizen)
    assert message["template_id"] == "queue_called"
    assert message["data"] == QUEUE_CALLED
    assert message["page"] == "pages/queue/ticket?id=12"
    assert message["miniprogram_state"] == "formal"
    assert dev.messages(touser="oSomebodyElse") == []


def test_each_grant_allows_one_message(wx_client: WeChatClient, dev: DevApi, citizen: str) -> None:
    dev.grant(citizen, "queue_called", count=2)
    wx_client.send_subscribe_message(citizen, "queue_called", QUEUE_CALLED)
    wx_client.send_subscribe_message(citizen, "queue_called", QUEUE_CALLED)

    with pytest.raises(SubscriptionRefused) as raised:
        wx_client.send_subscribe_message(citizen, "queue_called", QUEUE_CALLED)
    assert raised.value.errcode == 43101


def test_message_without_a_grant_is_refused_and_not_retried(
    wx_client: WeChatClient, dev: DevApi, citizen: str, sleeps: list[float]
) -> None:
    with pytest.raises(SubscriptionRefused):
        wx_client.send_subscribe_message(citizen, "queue_called", QUEUE_CALLED)

    assert sleeps == []
    assert dev.calls("subscribe_send") == 1


def test_grant_for_one_template_does_not_cover_another(
    wx_client: WeChatClient, dev: DevApi, citizen: str
) -> None:
    dev.grant(citizen, "queue_near")

    with pytest.raises(SubscriptionRefused):
        wx_client.send_subscribe_message(citizen, "queue_called", QUEUE_CALLED)


def test_unknown_template_is_refused(wx_client: WeChatClient, citizen: str) -> None:
    with pytest.raises(InvalidTemplate) as raised:
        wx_client.send_subscribe_message(citizen, "no_such_template", {"thing1": "办事提醒"})
    assert raised.value.errcode == 40037


def test_bad_fields_are_refused_before_anything_is_sent(
    wx_client: WeChatClient, dev: DevApi, citizen: str
) -> None:
    dev.grant(citizen, "queue_called")
    data = QUEUE_CALLED | {
        "thing2": "番禺区政务服务中心二楼东侧综合受理大厅北区",
        "time4": "明天上午",
    }

    with pytest.raises(TemplateDataInvalid) as raised:
        wx_client.send_subscribe_message(citizen, "queue_called", data)

    assert set(raised.value.problems) == {"thing2", "time4"}
    assert "20" in raised.value.problems["thing2"]
    assert dev.calls("subscribe_send") == 0
    assert dev.calls("stable_token") == 0


def test_data_not_matching_the_template_is_refused_by_wechat(
    wx_client: WeChatClient, dev: DevApi, citizen: str
) -> None:
    dev.grant(citizen, "queue_called")
    incomplete = {key: value for key, value in QUEUE_CALLED.items() if key != "thing3"}

    with pytest.raises(InvalidArgument) as raised:
        wx_client.send_subscribe_message(citizen, "queue_called", incomplete)

    assert raised.value.errcode == 47003
    assert "thing3" in raised.value.errmsg
    assert dev.stats()["messages_sent"] == 0


def test_page_missing_from_the_published_app_is_refused(
    wx_client: WeChatClient, dev: DevApi, citizen: str
) -> None:
    dev.grant(citizen, "queue_called")

    with pytest.raises(InvalidArgument) as raised:
        wx_client.send_subscribe_message(citizen, "queue_called", QUEUE_CALLED, page="pages/nope")
    assert raised.value.errcode == 41030


def test_unknown_openid_is_refused(wx_client: WeChatClient) -> None:
    with pytest.raises(InvalidArgument) as raised:
        wx_client.send_subscribe_message("oNobodyWeKnow", "queue_called", QUEUE_CALLED)
    assert raised.value.errcode == 40003


@pytest.fixture
def long_term_url() -> Iterator[str]:
    notice = TemplateSpec(
        id="policy_push_long",
        title="政策推送提醒",
        fields=DEFAULT_TEMPLATES["policy_push"].fields,
        long_term=True,
    )
    server, base_url = serve_in_thread(
        emulator=Emulator(apps={APPID: SECRET}, templates={notice.id: notice})
    )
    yield base_url
    server.shutdown()
    server.server_close()


def test_long_term_template_needs_no_grant(long_term_url: str) -> None:
    client = WeChatClient(
        requests.Session(),
        base_url=long_term_url,
        appid=APPID,
        secret=SECRET,
        token_cache=MemoryTokenCache(),
    )
    openid = requests.post(f"{long_term_url}/_emulator/login", json={}, timeout=5).json()["openid"]
    data = {
        "thing1": "番禺区促进消费补贴",
        "thing2": "番禺区商务局",
        "thing3": "至2024年6月30日",
        "thing4": "符合条件的企业可申报",
    }

    client.send_subscribe_message(openid, "policy_push_long", data)
    client.send_subscribe_message(openid, "policy_push_long", data)

    stats = requests.get(f"{long_term_url}/_emulator/stats", timeout=5).json()
    assert stats["messages_sent"] == 2


def test_an_emulator_given_production_template_ids_delivers_a_granted_message(
    make_client,  # type: ignore[no-untyped-def]
) -> None:
    # `make prod-like` hands the emulator the ids WECHAT_TEMPLATES names ("tmpl-..."): the grant
    # was kept under that id but the send looked for the spec's own key, so every push was 43101.
    emulator = Emulator(
        {APPID: SECRET},
        templates={f"tmpl-{key}": spec for key, spec in DEFAULT_TEMPLATES.items()},
    )
    server, base_url = serve_in_thread(emulator=emulator)
    try:
        openid = emulator.login(appid=APPID)["openid"]
        emulator.grant_subscription(openid, "tmpl-queue_called", appid=APPID)
        client = make_client(base_url=base_url)
        client.send_subscribe_message(openid, "tmpl-queue_called", QUEUE_CALLED)
    finally:
        server.shutdown()
    [message] = emulator.sent_messages(touser=openid)
    assert message["template_id"] == "tmpl-queue_called"
