"""The citizen's subscribe-message authorisations and their own notifications."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from flask_smorest.pagination import PaginationParameters

from app.db import get_session, utcnow
from app.notify import outbox
from app.notify.models import NotificationOutbox
from blueprints.authz import citizen_required, current_principal
from blueprints.notify.schemas import NotificationOut, SubscriptionOut, SubscriptionReportIn

blp = Blueprint("notify", __name__, url_prefix="", description="订阅消息授权")


@blp.route("/me/subscriptions")
class MySubscriptions(MethodView):
    @blp.response(200, SubscriptionOut(many=True))
    @citizen_required
    def get(self) -> list[outbox.SubscriptionState]:
        """What the caller has authorised, per notification template."""
        return outbox.subscription_states(get_session(), current_principal().id)

    @blp.arguments(SubscriptionReportIn)
    @blp.response(200, SubscriptionOut(many=True))
    @blp.alt_response(422, description="未知的模板 ID 或授权结果")
    @citizen_required
    def post(self, body: dict[str, Any]) -> list[outbox.SubscriptionState]:
        """Record what wx.requestSubscribeMessage answered; returns the updated authorisations."""
        user_id = current_principal().id
        session = get_session()
        outbox.record_subscription_result(session, user_id, body["results"], utcnow())
        session.commit()
        return outbox.subscription_states(session, user_id)


@blp.route("/me/notifications")
class MyNotifications(MethodView):
    @blp.response(200, NotificationOut(many=True))
    @blp.paginate()
    @citizen_required
    def get(self, pagination_parameters: PaginationParameters) -> list[NotificationOutbox]:
        """The caller's notifications, newest first (pagination in the X-Pagination header)."""
        page, size = pagination_parameters.page, pagination_parameters.page_size
        rows, total = outbox.list_for_user(
            get_session(), current_principal().id, offset=(page - 1) * size, limit=size
        )
        pagination_parameters.item_count = total
        return rows
