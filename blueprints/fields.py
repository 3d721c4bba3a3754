"""Marshmallow fields shared by the API's schemas."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from marshmallow import ValidationError, fields, validate

from app.calendar import LOCAL_TZ


class BeijingTime(fields.DateTime):
    """A moment as ISO 8601 in Beijing time with its offset: `2026-12-03T09:30:00+08:00`.

    Every timestamp the API sends carries its offset, and it is the time a person in Panyu
    reads on the wall clock; stored values are UTC (a naive one from the database is UTC).
    """

    def _serialize(
        self, value: Any, attr: str | None, obj: Any, **kwargs: Any
    ) -> str | float | None:
        if not isinstance(value, dt.datetime):
            return super()._serialize(value, attr, obj, **kwargs)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(LOCAL_TZ).isoformat()


# The dates any query of this API is about; beyond them a date is a typo or a probe.
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2100, 12, 31)
# The same bounds for OpenAPI, which has no minimum for dates: a pattern on the text.
DATE_PATTERN = r"^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


class CalendarDate(fields.Date):
    """A calendar date (ISO `YYYY-MM-DD`) between 2000-01-01 and 2100-12-31."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"pattern": DATE_PATTERN, **kwargs.pop("metadata", {})}
        validators = [validate.Range(min=FIRST_DAY, max=LAST_DAY)]
        super().__init__(validate=validators, metadata=metadata, **kwargs)


class Base64Bytes(fields.String):
    """Bytes sent as standard base64 text (a canvas's PNG, say), at most `max_bytes` decoded."""

    def __init__(self, *, max_bytes: int, **kwargs: Any) -> None:
        # base64 is 4 characters for every 3 bytes: the text limit follows from the bytes'.
        # The limits are the text's, as OpenAPI states them: a Length validator would be run
        # on the decoded bytes, and refuse text the document allows ("5g==" is one byte).
        self.min_chars, self.max_chars = 4, 4 * ((max_bytes + 2) // 3)
        metadata = {
            "format": "byte",
            "minLength": self.min_chars,
            "maxLength": self.max_chars,
            **kwargs.pop("metadata", {}),
        }
        super().__init__(metadata=metadata, **kwargs)
        self.max_bytes = max_bytes

    # A String on the wire (so OpenAPI says string/byte), bytes once loaded.
    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> bytes:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not self.min_chars <= len(text) <= self.max_chars:
            raise ValidationError(f"长度应在 {self.min_chars} 到 {self.max_chars} 个字符之间")
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError("应为 base64 编码") from None
        if len(raw) > self.max_bytes:
            raise ValidationError(f"不能超过 {self.max_bytes // 1024} KB")
        return raw
