"""Errors of the notification outbox and of subscription reports."""

from __future__ import annotations

from app.errors import ValidationFailed


class UnknownTemplateKey(LookupError):
    """A caller asked for a template key the catalog does not know (a programming error)."""


class PersonalDataInMessage(ValueError):
    """A message field looks like an ID number or a phone number; such data is never sent."""


class UnknownTemplate(ValidationFailed):
    code = "UNKNOWN_TEMPLATE"
    message = "未知的订阅消息模板"
