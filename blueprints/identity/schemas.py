"""Request and response bodies of citizen login, refresh, profile, phone and real name."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from blueprints.fields import BeijingTime

_CODE = validate.Length(min=1, max=128)


class WeChatLoginIn(Schema):
    code = fields.String(
        required=True, validate=_CODE, metadata={"description": "wx.login() 返回的 code"}
    )


class RefreshIn(Schema):
    refresh_token = fields.String(
        required=True,
        validate=validate.Length(min=1, max=256),
        metadata={"description": "刷新令牌"},
    )


class TokenPairOut(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"description": "固定为 Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "访问令牌有效秒数"})
    refresh_token = fields.String(required=True)
    refresh_expires_in = fields.Integer(required=True, metadata={"description": "刷新令牌有效秒数"})


class LoginUserOut(Schema):
    id = fields.Integer(required=True)
    phone_bound = fields.Boolean(required=True)
    realname_verified = fields.Boolean(required=True)


class WeChatLoginOut(TokenPairOut):
    user = fields.Nested(LoginUserOut, required=True)


class RealNameOut(Schema):
    verified = fields.Boolean(required=True)
    name = fields.String(allow_none=True, metadata={"description": "脱敏姓名"})
    id_number = fields.String(allow_none=True, metadata={"description": "脱敏身份证号"})
    verified_at = BeijingTime(allow_none=True)
    method = fields.String(
        allow_none=True, metadata={"description": "核验方式：realname_service / checksum（仅开发）"}
    )
    face_verified_at = BeijingTime(allow_none=True, metadata={"description": "最近人脸核验时间"})


class MeOut(Schema):
    id = fields.Integer(required=True)
    phone = fields.String(allow_none=True, metadata={"description": "脱敏手机号"})
    phone_bound = fields.Boolean(required=True)
    realname = fields.Nested(RealNameOut, required=True)
    identity_level = fields.String(
        required=True,
        validate=validate.OneOf(["none", "checksum", "verified", "face"]),
        metadata={
            "description": "身份核验等级：none 未实名 / checksum 仅格式校验（开发环境）/ "
            "verified 实名核验 / face 近期人脸核验（绑定法定代表人、设置收款账户需要）"
        },
    )
    created_at = BeijingTime(required=True)


class BindPhoneIn(Schema):
    """Either the getPhoneNumber `code` (current) or `encrypted_data` + `iv` (legacy)."""

    # The same rule for the OpenAPI document (blueprints/openapi: openapi_extra).
    openapi_extra: ClassVar[dict[str, Any]] = {
        "oneOf": [
            {
                "required": ["code"],
                "not": {"anyOf": [{"required": ["encrypted_data"]}, {"required": ["iv"]}]},
            },
            {"required": ["encrypted_data", "iv"], "not": {"required": ["code"]}},
        ]
    }

    code = fields.String(validate=_CODE, metadata={"description": "getPhoneNumber 返回的 code"})
    encrypted_data = fields.String(
        validate=validate.Length(min=1, max=4096),
        metadata={"description": "旧版 getPhoneNumber 返回的 encryptedData"},
    )
    iv = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "旧版 iv"})

    @validates_schema
    def _one_scheme(self, data: dict[str, Any], **_kwargs: Any) -> None:
        legacy = [key for key in ("encrypted_data", "iv") if key in data]
        if "code" in data and legacy:
            raise ValidationError("只能提供 code，或 encrypted_data 与 iv 之一", "_schema")
        if "code" not in data and len(legacy) != 2:
            raise ValidationError("请提供 code，或同时提供 encrypted_data 与 iv", "_schema")


class FaceVerificationIn(Schema):
    verify_token = fields.String(
        required=True,
        validate=validate.Length(min=8, max=256),
        metadata={"description": "小程序人脸核身完成后得到的一次性 verify token"},
    )


class RealNameIn(Schema):
    name = fields.String(
        required=True, validate=validate.Length(min=1, max=64), metadata={"description": "真实姓名"}
    )
    id_number = fields.String(
        required=True,
        validate=validate.Length(min=1, max=32),
        metadata={"description": "18位居民身份证号"},
    )
