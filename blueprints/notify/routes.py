"""The citizen's subscribe-message authorisations and their own notifications."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from app.db import get_session, utcnow
from app.notify import outbox
from blueprints.authz import citizen_required, current_principal
from blueprints.notify.schemas import NotificationOut, SubscriptionOut, SubscriptionReportIn
from blueprints.openapi import Blueprint
from blueprints.pagination import PageArgs, PageRequest, page_from, page_of, page_schema, whole_list

blp = Blueprint("notify", __name__, url_prefix="", description="订阅消息授权")


@blp.route("/me/subscriptions")
class MySubscriptions(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(SubscriptionOut))
    @citizen_required
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """What the caller has authorised, per notification template."""
        return page_of(outbox.subscription_states(get_session(), current_principal().id), args)

    @blp.arguments(SubscriptionReportIn)
    @blp.response(200, page_schema(SubscriptionOut))
    @blp.alt_response(422, description="未知的模板 ID 或授权结果")
    @citizen_required
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Record what wx.requestSubscribeMessage answered; returns the updated authorisations."""
        user_id = current_principal().id
        session = get_session()
        outbox.record_subscription_result(session, user_id, body["results"], utcnow())
        session.commit()
        return whole_list(outbox.subscription_states(session, user_id))


@blp.route("/me/notifications")
class MyNotifications(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(NotificationOut))
    @citizen_required
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The caller's notifications, newest first."""
        page = PageRequest.of(args)
        rows, total = outbox.list_for_user(
            get_session(), current_principal().id, offset=page.offset, limit=page.limit
        )
        return page_from(rows, total, args)
