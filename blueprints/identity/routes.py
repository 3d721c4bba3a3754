"""Citizen login, token refresh and logout, profile, phone binding and real-name verification."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from flask import current_app, g
from flask.views import MethodView
from sqlalchemy.orm import Session

from app.db import get_session, utcnow
from app.errors import NotFound
from app.extensions import limiter
from app.identity import citizens, realname, sessions
from app.identity.assurance import AssuranceLevel, level_of
from app.identity.errors import IdentityServiceUnavailable
from app.identity.face import confirm_face
from app.identity.models import User
from app.identity.verifiers import IdentityVerifier
from app.integrations.verification import get_verification
from app.integrations.wechat import get_wechat
from app.security import get_cipher
from app.security.masking import mask_phone
from blueprints.authz import citizen_required, current_principal, login_required, public
from blueprints.authz import token_settings as current_token_settings
from blueprints.identity.schemas import (
    BindPhoneIn,
    FaceVerificationIn,
    MeOut,
    RealNameIn,
    RefreshIn,
    TokenPairOut,
    WeChatLoginIn,
    WeChatLoginOut,
)
from blueprints.logins import keeping_writes, login_rate, token_pair_body
from blueprints.openapi import Blueprint

blp = Blueprint(
    "identity", __name__, url_prefix="", description="小程序用户：登录、手机号、实名认证"
)

# Argument schemas are given as instances: given a class, webargs builds a new instance (its
# fields deep-copied) on every request. An instance is only read when loading.


def _current_user(session: Session) -> User:
    user = session.get(User, current_principal().id)
    if user is None:
        raise NotFound("用户不存在")
    return user


def identity_verifier() -> IdentityVerifier:
    """The app's real-name verifier: one injected by a test (extensions), else the configured
    service (app/integrations/verification.py)."""
    verifier: IdentityVerifier | None = current_app.extensions.get("identity_verifier")
    return verifier or get_verification().identity


def _level(user: User) -> AssuranceLevel:
    return level_of(
        user, now=utcnow(), face_recent_seconds=current_app.config["FACE_RECENT_SECONDS"]
    )


def _profile(user: User) -> dict[str, Any]:
    cipher = get_cipher()
    phone = citizens.phone_of(cipher, user)
    return {
        "id": user.id,
        "phone": mask_phone(phone) if phone else None,
        "phone_bound": phone is not None,
        "realname": realname.masked_identity(cipher, user),
        "identity_level": _level(user).name.lower(),
        "created_at": user.created_at,
    }


@blp.route("/auth/wechat/login")
class WeChatLogin(MethodView):
    decorators: ClassVar[list[Callable[..., Any]]] = [limiter.limit(login_rate)]

    @blp.arguments(WeChatLoginIn())
    @blp.response(200, WeChatLoginOut)
    @blp.alt_response(401, description="登录凭证无效或已被使用")
    @blp.alt_response(403, description="账号已停用")
    @blp.alt_response(503, description="微信服务暂时不可用")
    @public
    def post(self, body: dict[str, str]) -> dict[str, Any]:
        """Log in with the code from wx.login(); the first login creates the user."""
        session = get_session()
        now = utcnow()
        with keeping_writes(session):
            user, pair = citizens.log_in(
                session,
                get_wechat(),
                get_cipher(),
                body["code"],
                settings=current_token_settings(),
                refresh_ttl_seconds=current_app.config["REFRESH_TOKEN_TTL_SECONDS"],
                now=now,
                request_id=g.get("request_id"),
            )
        session.commit()
        return {
            **token_pair_body(pair, now),
            "user": {
                "id": user.id,
                "phone_bound": user.phone_sealed is not None,
                "realname_verified": user.is_realname_verified,
            },
        }


@blp.route("/auth/refresh")
class Refresh(MethodView):
    decorators: ClassVar[list[Callable[..., Any]]] = [limiter.limit(login_rate)]

    @blp.arguments(RefreshIn())
    @blp.response(200, TokenPairOut)
    @blp.alt_response(401, description="刷新令牌无效、过期或被重复使用（整个登录随之失效）")
    @public
    def post(self, body: dict[str, str]) -> dict[str, Any]:
        """Exchange a refresh token for a new token pair (citizens and staff)."""
        session = get_session()
        now = utcnow()
        with keeping_writes(session):
            pair = sessions.refresh_session(
                session,
                body["refresh_token"],
                settings=current_token_settings(),
                refresh_ttl_seconds=current_app.config["REFRESH_TOKEN_TTL_SECONDS"],
                reuse_grace_seconds=current_app.config["REFRESH_REUSE_GRACE_SECONDS"],
                now=now,
                request_id=g.get("request_id"),
            )
        session.commit()
        return token_pair_body(pair, now)


@blp.route("/auth/logout")
class Logout(MethodView):
    @blp.response(204)
    @blp.alt_response(401, description="未登录")
    @login_required
    def post(self) -> None:
        """End the login of the presented access token (its refresh tokens too)."""
        principal = current_principal()
        session = get_session()
        if principal.family_id:
            sessions.end_session(
                session, principal.family_id, now=utcnow(), request_id=g.get("request_id")
            )
        session.commit()


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, MeOut)
    @blp.alt_response(401, description="未登录")
    @citizen_required
    def get(self) -> dict[str, Any]:
        """The caller's profile, personal data masked."""
        return _profile(_current_user(get_session()))


@blp.route("/me/phone")
class MyPhone(MethodView):
    @blp.arguments(BindPhoneIn())
    @blp.response(200, MeOut)
    @blp.alt_response(401, description="未登录")
    @blp.alt_response(422, description="授权凭证或加密数据无效")
    @blp.alt_response(503, description="微信服务暂时不可用")
    @citizen_required
    def post(self, body: dict[str, str]) -> dict[str, Any]:
        """Bind the phone number the user authorised (getPhoneNumber code, or legacy data)."""
        session = get_session()
        user = _current_user(session)
        now, request_id = utcnow(), g.get("request_id")
        if "code" in body:
            citizens.bind_phone_by_code(
                session,
                get_wechat(),
                get_cipher(),
                user,
                body["code"],
                now=now,
                request_id=request_id,
            )
        else:
            citizens.bind_phone_by_encrypted_data(
                session,
                get_wechat(),
                get_cipher(),
                user,
                body["encrypted_data"],
                body["iv"],
                now=now,
                request_id=request_id,
            )
        session.commit()
        return _profile(user)


@blp.route("/me/realname")
class MyRealName(MethodView):
    @blp.arguments(RealNameIn())
    @blp.response(200, MeOut)
    @blp.alt_response(401, description="未登录")
    @blp.alt_response(409, description="身份证号已被其他账号使用，或本账号已实名")
    @blp.alt_response(422, description="姓名或身份证号不正确，或核验不一致")
    @blp.alt_response(503, description="身份核验服务暂时不可用")
    @citizen_required
    def post(self, body: dict[str, str]) -> dict[str, Any]:
        """Verify the caller's real name and ID number."""
        session = get_session()
        user = _current_user(session)
        with keeping_writes(session):
            realname.verify_real_name(
                session,
                get_cipher(),
                identity_verifier(),
                user,
                name=body["name"],
                id_number=body["id_number"],
                now=utcnow(),
                request_id=g.get("request_id"),
            )
        session.commit()
        return _profile(user)


@blp.route("/me/realname/face")
class MyFaceVerification(MethodView):
    @blp.arguments(FaceVerificationIn())
    @blp.response(200, MeOut)
    @blp.alt_response(401, description="未登录")
    @blp.alt_response(403, description="尚未实名，或人脸核验未通过（已记录）")
    @blp.alt_response(503, description="身份核验服务暂时不可用")
    @citizen_required
    def post(self, body: dict[str, str]) -> dict[str, Any]:
        """Redeem the face verification the mini-program just ran (its one-time verify token):
        the account holds the face level for a while (actions that move money or act for an
        enterprise need it)."""
        session = get_session()
        user = _current_user(session)
        face = get_verification().face
        if face is None:
            raise IdentityServiceUnavailable()  # checksum mode: no face service configured
        with keeping_writes(session):
            confirm_face(
                session,
                get_cipher(),
                face,
                user,
                body["verify_token"],
                now=utcnow(),
                max_age_seconds=current_app.config["FACE_RECENT_SECONDS"],
                request_id=g.get("request_id"),
            )
        session.commit()
        return _profile(user)
