"""Settings come from the environment; production refuses unsafe ones."""

from __future__ import annotations

import json

import pytest

from config import ConfigError, load_config
from wechat.templates import DEFAULT_TEMPLATES

SAFE_PRODUCTION = {
    "SECRET_KEY": "x" * 48,
    "JWT_SIGNING_KEYS": "j1:" + "a-jwt-signing-key-from-the-vault-0123456789",
    "DATABASE_URL": "postgresql+psycopg://app@db/yuhaoban",
    "WECHAT_API_BASE": "https://api.weixin.qq.com",
    "WECHAT_SECRET": "real-secret",
    "DATA_KEYS": "k1:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=",
    "DATA_INDEX_KEY": "an-index-key-from-the-vault",
    "REDIS_URL": "redis://cache:6379/0",
    "WECHAT_TEMPLATES": json.dumps({key: f"tmpl-real-{key}" for key in DEFAULT_TEMPLATES}),
    "JOB_RUNNER": "dramatiq",
    "SEAL_MASTER_KEY": "m1:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=",
    "SEAL_CODE_KEYS": "p:a-code-key-from-the-vault",
    "QUEUE_CODE_KEYS": "q1:a-queue-code-key-from-the-vault",
    "AUDIT_MAC_KEYS": "a1:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=",
    "AUDIT_CHECKPOINT_KEYS": "c1:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=",
    "IDENTITY_SERVICE_BASE": "https://ctid.example.gov.cn",
    "IDENTITY_SERVICE_SECRET": "an-identity-service-secret",
    "CITY_CODE_SERVICE_BASE": "https://hmm.gz.gov.cn/api",
    "METRICS_TOKEN": "a-metrics-token-from-the-vault-0123456789",
}


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in SAFE_PRODUCTION.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_development_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_ENV", raising=False)
    assert load_config().ENV_NAME == "development"


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCESS_TOKEN_TTL_SECONDS", "123")
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:6379/1")
    config = load_config("development")
    assert config.ACCESS_TOKEN_TTL_SECONDS == 123
    assert config.REDIS_URL == "redis://elsewhere:6379/1"


def test_production_starts_with_safe_settings(production_env: pytest.MonkeyPatch) -> None:
    assert load_config("production").ENV_NAME == "production"


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("SECRET_KEY", "dev-only-secret-key-change-me-before-deploying", "SECRET_KEY"),
        ("SECRET_KEY", "short", "SECRET_KEY"),
        ("DATABASE_URL", "sqlite:///var/app.db", "PostgreSQL"),
        ("WECHAT_API_BASE", "emulator", "WECHAT_API_BASE"),
        ("WECHAT_API_BASE", "http://127.0.0.1:8765", "WECHAT_API_BASE"),
        ("REDIS_URL", "", "REDIS_URL"),
        ("WECHAT_TEMPLATES", "", "WECHAT_TEMPLATES"),
        ("WECHAT_TEMPLATES", "not json", "WECHAT_TEMPLATES must be JSON"),
        ("WECHAT_TEMPLATES", '["queue_called"]', "WECHAT_TEMPLATES must be a JSON object"),
        # Every message the service sends needs its real id, the new appointment ones included.
        ("WECHAT_TEMPLATES", '{"queue_called": "t1"}', "lacks a template id for: appointment_"),
        ("JOB_RUNNER", "inprocess", "JOB_RUNNER"),
        ("QUEUE_CODE_KEYS", "", "QUEUE_CODE_KEYS"),
        ("QUEUE_CODE_KEYS", "  ", "QUEUE_CODE_KEYS"),
        ("QUEUE_WXACODE_PAGE", "/pages/queue/scan", "QUEUE_WXACODE_PAGE"),
        ("QUEUE_WXACODE_PAGE", "pages/queue/scan?from=poster", "QUEUE_WXACODE_PAGE"),
        ("AUDIT_MAC_KEYS", "", "AUDIT_MAC_KEYS"),
        ("AUDIT_MAC_KEYS", "dev1:ZGV2LW9ubHktYXVkaXQtbWFjLWtleS0zMi1ieXRlcyE=", "AUDIT_MAC_KEYS"),
        ("AUDIT_CHECKPOINT_KEYS", "", "AUDIT_CHECKPOINT_KEYS"),
        ("REFRESH_REUSE_GRACE_SECONDS", "600", "REFRESH_REUSE_GRACE_SECONDS"),
        ("IDENTITY_SERVICE_BASE", "checksum", "IDENTITY_SERVICE_BASE"),
        ("IDENTITY_SERVICE_BASE", "emulator", "IDENTITY_SERVICE_BASE"),
        ("IDENTITY_SERVICE_BASE", "http://127.0.0.1:8766", "IDENTITY_SERVICE_BASE"),
        ("IDENTITY_SERVICE_SECRET", "dev-identity-service-secret", "IDENTITY_SERVICE_SECRET"),
        ("BANK_ACCOUNT_SERVICE_BASE", "emulator", "BANK_ACCOUNT_SERVICE_BASE"),
        ("CITY_CODE_SERVICE_BASE", "emulator", "CITY_CODE_SERVICE_BASE"),
        ("CITY_CODE_SERVICE_BASE", "http://127.0.0.1:8766", "CITY_CODE_SERVICE_BASE"),
        ("FACE_RECENT_SECONDS", "86400", "FACE_RECENT_SECONDS"),
    ],
)
def test_production_refuses_unsafe_settings(
    production_env: pytest.MonkeyPatch, name: str, value: str, complaint: str
) -> None:
    production_env.setenv(name, value)
    with pytest.raises(ConfigError, match=complaint):
        load_config("production")


def test_production_refuses_missing_secret_key(production_env: pytest.MonkeyPatch) -> None:
    production_env.delenv("SECRET_KEY")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config("production")


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown APP_ENV"):
        load_config("staging-ish")


def test_production_sends_the_console_cookie_over_https_only(
    production_env: pytest.MonkeyPatch,
) -> None:
    settings = load_config("production")
    assert settings.SESSION_COOKIE_SECURE is True
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_SAMESITE == "Lax"
