"""Bodies of the hall set-up API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

# Clock times as the API reads them ("08:30"), for OpenAPI, which has no time format.
CLOCK = {"pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$", "example": "08:30"}

ID = validate.Range(min=1, max=2**53)


class IntervalSchema(Schema):
    weekday = fields.Integer(
        required=True, validate=validate.Range(0, 6), metadata={"description": "0 = 周一"}
    )
    opens_at = fields.Time(required=True, format="%H:%M", metadata=CLOCK)
    closes_at = fields.Time(required=True, format="%H:%M", metadata=CLOCK)


class HoursIn(Schema):
    intervals = fields.List(
        fields.Nested(IntervalSchema), required=True, validate=validate.Length(max=28)
    )


class HallProfileIn(Schema):
    address = fields.String(validate=validate.Length(max=255))
    latitude = fields.Float(allow_none=True, validate=validate.Range(-90, 90))
    longitude = fields.Float(allow_none=True, validate=validate.Range(-180, 180))
    phone = fields.String(allow_none=True, validate=validate.Length(max=32))
    open_on_public_holidays = fields.Boolean()
    makeup_workday_weekday = fields.Integer(validate=validate.Range(0, 6))
    late_return_places = fields.Integer(allow_none=True, validate=validate.Range(0, 100))
    max_recalls = fields.Integer(allow_none=True, validate=validate.Range(0, 10))


class SpecialDayIn(Schema):
    closed = fields.Boolean(required=True)
    opens_at = fields.Time(load_default=None, allow_none=True, format="%H:%M", metadata=CLOCK)
    closes_at = fields.Time(load_default=None, allow_none=True, format="%H:%M", metadata=CLOCK)
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=128))


class CategoryIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    prefix = fields.String(
        required=True, validate=validate.Regexp(r"^[A-Z]$"), metadata={"description": "号码字母"}
    )
    daily_cap = fields.Integer(load_default=300, validate=validate.Range(1, 9999))
    typical_minutes = fields.Float(load_default=10.0, validate=validate.Range(0.5, 480))
    matters = fields.List(
        fields.String(validate=validate.Length(max=128)),
        load_default=list,
        validate=validate.Length(max=200),
    )
    active = fields.Boolean(load_default=True)
    sort_order = fields.Integer(load_default=0, validate=validate.Range(0, 1000))


class CategoryPatchIn(Schema):
    name = fields.String(validate=validate.Length(min=1, max=64))
    prefix = fields.String(validate=validate.Regexp(r"^[A-Z]$"))
    daily_cap = fields.Integer(validate=validate.Range(1, 9999))
    typical_minutes = fields.Float(validate=validate.Range(0.5, 480))
    matters = fields.List(
        fields.String(validate=validate.Length(max=128)), validate=validate.Length(max=200)
    )
    active = fields.Boolean()
    sort_order = fields.Integer(validate=validate.Range(0, 1000))


class HallCategoryOut(Schema):
    id = fields.Integer()
    hall_id = fields.Integer()
    name = fields.String()
    prefix = fields.String()
    daily_cap = fields.Integer()
    typical_minutes = fields.Float()
    matters = fields.List(fields.String())
    active = fields.Boolean()
    sort_order = fields.Integer()


class WindowIn(Schema):
    number = fields.Integer(required=True, validate=validate.Range(1, 999))
    label = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    category_ids = fields.List(
        fields.Integer(validate=ID), load_default=list, validate=validate.Length(max=26)
    )


class WindowPatchIn(Schema):
    number = fields.Integer(validate=validate.Range(1, 999))
    label = fields.String(allow_none=True, validate=validate.Length(max=64))
    category_ids = fields.List(fields.Integer(validate=ID), validate=validate.Length(max=26))


class HallWindowOut(Schema):
    id = fields.Integer()
    hall_id = fields.Integer()
    number = fields.Integer()
    label = fields.String(allow_none=True)
    status = fields.String()
    clerk_id = fields.Integer(allow_none=True)
    category_ids = fields.Method("_category_ids")

    def _category_ids(self, window: object) -> list[int]:
        return [c.id for c in getattr(window, "categories", [])]


class HoursOut(Schema):
    weekday = fields.Integer()
    opens_at = fields.Time(format="%H:%M", metadata=CLOCK)
    closes_at = fields.Time(format="%H:%M", metadata=CLOCK)


class HallOut(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    kind = fields.String()
    town = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    latitude = fields.Float(allow_none=True)
    longitude = fields.Float(allow_none=True)
    phone = fields.String(allow_none=True)
    open_now = fields.Boolean()
    today = fields.List(fields.Nested(HoursOut), metadata={"description": "今日营业时段"})
    day_kind = fields.String(metadata={"description": "workday/weekend/holiday/makeup"})


class HallDetailOut(HallOut):
    open_on_public_holidays = fields.Boolean()
    makeup_workday_weekday = fields.Integer()
    late_return_places = fields.Integer(allow_none=True)
    max_recalls = fields.Integer(allow_none=True)
    weekly_hours = fields.List(fields.Nested(HoursOut))
    categories = fields.List(fields.Nested(HallCategoryOut))
    windows = fields.List(fields.Nested(HallWindowOut))
