"""What a policy push says: the subscription message built from the policy, and whether notify
will send it.

Notify refuses a message with a mobile or an ID number in a field
(`app.notify.outbox.check_no_personal_data`), and the message carries the first characters of
the policy's title and summary. So the officer's text is checked against the message itself,
with notify's own check, when a policy is created, edited or published (`check_officer_text`),
where the officer can correct it; the drain checks each policy's message once per claim too
(`refused`), for a policy stored before this check or a department's name, and fails its
pushes alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.notify.errors import PersonalDataInMessage
from app.notify.outbox import check_no_personal_data
from app.policies.errors import PolicyTextNotPushable
from app.policies.models import Policy

TEMPLATE_KEY = "policy_push"
# A `thing` field of a subscription message holds at most 20 characters.
THING_LENGTH = 20
# Why a push is failed when notify would refuse its message.
REFUSED = "PERSONAL_DATA_IN_MESSAGE"


def policy_message(policy: Policy, department: str) -> dict[str, str]:
    """The `policy_push` message's fields for this policy of this department."""
    ends = policy.expires_on
    return {
        "thing1": policy.title[:THING_LENGTH],
        "thing2": department[:THING_LENGTH],
        # The policy's own last day, or none: never a date its department did not set.
        "thing3": f"至{ends.year}年{ends.month}月{ends.day}日" if ends else "长期有效",
        "thing4": (policy.summary or policy.title)[:THING_LENGTH],
    }


def refused(data: Mapping[str, str]) -> bool:
    """Whether notify would refuse to send this message (personal data in a field)."""
    try:
        check_no_personal_data(data)
    except PersonalDataInMessage:
        return True
    return False


def check_officer_text(policy: Policy) -> None:
    """Refuse a title or summary whose pushed part notify would refuse (PolicyTextNotPushable,
    naming the field)."""
    data = policy_message(policy, "")
    written_from = {"thing1": "title", "thing4": "summary" if policy.summary else "title"}
    for key, field in written_from.items():
        if refused({key: data[key]}):
            label = "政策标题" if field == "title" else "政策摘要"
            raise PolicyTextNotPushable(
                f"{label}的前{THING_LENGTH}个字会随订阅消息推送给企业，其中不能有手机号码或"
                f"身份证号码，请删去或移到第{THING_LENGTH}个字之后",
                field=field,
            )
