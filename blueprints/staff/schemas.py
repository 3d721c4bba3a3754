"""Request and response bodies of staff login and staff account management.

No output schema has a password or hash field: what is not declared is never serialised.
"""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.identity.models import StaffRole
from blueprints.fields import BeijingTime
from blueprints.http import MAX_ID
from blueprints.identity.schemas import TokenPairOut
from blueprints.pagination import PageArgs

_PASSWORD = validate.Length(min=1, max=256)


class StaffLoginIn(Schema):
    username = fields.String(
        required=True, validate=validate.Length(min=1, max=64), metadata={"description": "用户名"}
    )
    password = fields.String(
        required=True, validate=_PASSWORD, load_only=True, metadata={"description": "密码"}
    )


class GrantSchema(Schema):
    """One role and its scope: a hall for clerks and hall managers, a department for
    reviewers and policy officers, nothing for admins."""

    role = fields.Enum(StaffRole, by_value=True, required=True, metadata={"description": "角色"})
    hall_id = fields.Integer(
        load_default=None, allow_none=True, metadata={"description": "大厅（窗口人员、大厅管理员）"}
    )
    department_id = fields.Integer(
        load_default=None,
        allow_none=True,
        metadata={"description": "部门（审核人员、政策专员）"},
    )


class StaffOut(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    display_name = fields.String(required=True)
    roles = fields.List(fields.Nested(GrantSchema), required=True, attribute="grants")


class StaffAccountOut(StaffOut):
    active = fields.Boolean(required=True)
    locked_until = BeijingTime(
        allow_none=True, metadata={"description": "锁定截止时间（未锁定为空或已过去）"}
    )
    failed_logins = fields.Integer(required=True, metadata={"description": "连续失败登录次数"})
    last_login_at = BeijingTime(allow_none=True)
    password_changed_at = BeijingTime(allow_none=True)
    created_at = BeijingTime(required=True)


class StaffLoginOut(TokenPairOut):
    staff = fields.Nested(StaffOut, required=True)


AT_LEAST_ONE = validate.Length(min=1, error="至少需要一个角色")  # minItems in the OpenAPI


class StaffCreateIn(Schema):
    username = fields.String(
        required=True,
        validate=validate.Length(min=3, max=64),
        metadata={"description": "用户名：3–64 位小写字母、数字或 . _ -"},
    )
    display_name = fields.String(
        required=True, validate=validate.Length(min=1, max=128), metadata={"description": "姓名"}
    )
    password = fields.String(
        required=True,
        validate=_PASSWORD,
        load_only=True,
        metadata={"description": "初始密码：至少 10 位，含大写、小写、数字、符号中的三类"},
    )
    roles = fields.List(fields.Nested(GrantSchema), required=True, validate=AT_LEAST_ONE)


class StaffUpdateIn(Schema):
    openapi_extra: ClassVar[dict[str, int]] = {"minProperties": 1}  # see blueprints/openapi
    display_name = fields.String(validate=validate.Length(min=1, max=128))
    active = fields.Boolean(metadata={"description": "false 停用账号并使其登录失效"})
    roles = fields.List(
        fields.Nested(GrantSchema),
        validate=AT_LEAST_ONE,
        metadata={"description": "替换全部角色；账号现有登录随之失效"},
    )

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data:
            raise ValidationError("请至少提供一个要修改的字段", "_schema")


class PasswordResetIn(Schema):
    password = fields.String(
        required=True,
        validate=_PASSWORD,
        load_only=True,
        metadata={"description": "新密码；重置后账号解锁，原有登录全部失效"},
    )


class PasswordChangeIn(Schema):
    current_password = fields.String(required=True, validate=_PASSWORD, load_only=True)
    new_password = fields.String(required=True, validate=_PASSWORD, load_only=True)


class StaffListArgs(PageArgs):
    hall_id = fields.Integer(
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "只列出在该大厅有角色的人员（大厅管理员必填）"},
    )
    department_id = fields.Integer(
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "只列出在该部门有角色的人员"},
    )
    role = fields.Enum(StaffRole, by_value=True, metadata={"description": "按角色筛选"})
    active = fields.Boolean(metadata={"description": "按启用状态筛选"})


class ScanConfirmIn(Schema):
    code = fields.String(
        required=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "工作台二维码的内容（yhb-console: 开头）"},
    )


class ScanConfirmOut(Schema):
    purpose = fields.String(
        required=True, metadata={"description": "login：登录工作台；link：绑定本微信到工作人员账号"}
    )
    staff_display_name = fields.String(required=True, metadata={"description": "工作人员姓名"})
