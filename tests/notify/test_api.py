"""The citizen's API: report subscriptions, see them, see their own notifications."""

from __future__ import annotations

from app.db import utcnow
from app.integrations.wechat import get_wechat
from app.notify.sender import drain
from tests.factories.notify import emulator_grant


def test_reported_acceptance_lets_the_notification_through_to_wechat(
    app,
    session,
    client,
    create_wechat_user,
    citizen_headers,
    enqueue_notification,
    sent_to,
    emulator_url,
):
    user = create_wechat_user()
    headers = citizen_headers(user)
    # The phone: wx.requestSubscribeMessage shows the dialog, the user taps 允许 (WeChat
    # records it), then the mini-program reports the answer to us.
    emulator_grant(emulator_url, user.openid, "queue_called")
    reported = client.post(
        "/api/v1/me/subscriptions",
        json={"results": {"queue_called": "accept", "queue_near": "reject"}},
        headers=headers,
    )

    assert reported.status_code == 200
    by_key = {item["template_key"]: item for item in reported.get_json()["items"]}
    assert by_key["queue_called"]["one_time_remaining"] == 1
    assert by_key["queue_called"]["can_send"] is True
    assert by_key["queue_near"]["can_send"] is False
    assert by_key["queue_near"]["last_result"] == "reject"
    assert by_key["approval_result"]["last_result"] is None

    row = enqueue_notification(user, "queue_called")
    drain(app.extensions["db"].sessionmaker, get_wechat(app), now_fn=utcnow)
    session.expire_all()  # the requests below share this test's session and its identity map

    assert [m["template_id"] for m in sent_to(user)] == ["queue_called"]
    listed = client.get("/api/v1/me/notifications", headers=headers)
    assert listed.status_code == 200
    (item,) = listed.get_json()["items"]
    assert item["id"] == row.id and item["status"] == "sent" and item["sent_at"]
    assert item["data"]["character_string1"] == "A012"
    after = client.get("/api/v1/me/subscriptions", headers=headers).get_json()["items"]
    assert {i["template_key"]: i["one_time_remaining"] for i in after}["queue_called"] == 0


def test_notifications_are_listed_newest_first_in_pages_and_only_the_callers(
    client, create_wechat_user, citizen_headers, enqueue_notification, grant_subscription
):
    user, other = create_wechat_user(), create_wechat_user()
    grant_subscription(user, in_wechat=False)
    rows = [enqueue_notification(user) for _ in range(3)]
    enqueue_notification(other)

    response = client.get(
        "/api/v1/me/notifications?page=1&page_size=2", headers=citizen_headers(user)
    )

    assert response.status_code == 200
    page = response.get_json()
    assert [item["id"] for item in page["items"]] == [rows[2].id, rows[1].id]
    assert (page["total"], page["page"], page["page_size"]) == (3, 1, 2)
    # Waiting for the sender (the user allowed the template), or settled: never sent without
    # an authorisation.
    assert [item["status"] for item in page["items"]] == ["pending", "pending"]
    other_page = client.get("/api/v1/me/notifications", headers=citizen_headers(other)).get_json()
    assert [item["status"] for item in other_page["items"]] == ["skipped"]


def test_a_report_naming_an_unknown_template_is_refused(
    client, create_wechat_user, citizen_headers
):
    user = create_wechat_user()

    response = client.post(
        "/api/v1/me/subscriptions",
        json={"results": {"someone-elses-template": "accept"}},
        headers=citizen_headers(user),
    )

    assert response.status_code == 422
    assert response.get_json()["code"] == "UNKNOWN_TEMPLATE"
    assert response.get_json()["details"] == {"template_id": "someone-elses-template"}


def test_a_report_with_an_unknown_answer_or_field_is_refused(
    client, create_wechat_user, citizen_headers
):
    headers = citizen_headers(create_wechat_user())

    bad_answer = client.post(
        "/api/v1/me/subscriptions", json={"results": {"queue_called": "maybe"}}, headers=headers
    )
    extra_field = client.post(
        "/api/v1/me/subscriptions",
        json={"results": {"queue_called": "accept"}, "errMsg": "requestSubscribeMessage:ok"},
        headers=headers,
    )
    empty = client.post("/api/v1/me/subscriptions", json={"results": {}}, headers=headers)

    assert [r.status_code for r in (bad_answer, extra_field, empty)] == [422, 422, 422]
    assert bad_answer.get_json()["code"] == "VALIDATION_FAILED"


def test_subscriptions_need_a_citizen_token(client, create_staff, staff_headers):
    anonymous = client.get("/api/v1/me/subscriptions")
    staff = client.get("/api/v1/me/notifications", headers=staff_headers(create_staff()))

    assert anonymous.status_code == 401
    assert staff.status_code == 403
