"""Settings classes, every value read from the environment.

`load_config(name)` picks a class by name (``development`` by default, ``testing``,
``production``) and instantiates it, reading the environment at that moment, never at import.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from wechat.templates import DEFAULT_TEMPLATES

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _user_cache_dir() -> Path:
    """The XDG cache directory of this project for the current user."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "yuhaoban"


# Values that are fine on a laptop and must never reach production.
DEV_SECRET_KEY = "dev-only-secret-key-change-me-before-deploying"  # nosec B105  # development default, refused by ProductionConfig.validate
DEV_DATA_KEY = "ZGV2LW9ubHktZGF0YS1rZXktMzItYnl0ZXMtLS0tLS0="  # base64 of 32 dev bytes
DEV_INDEX_KEY = "dev-only-index-key-change-me"
DEV_WECHAT_APPID = "wx_dev_yuhaoban"
DEV_WECHAT_SECRET = "dev-wechat-secret"  # nosec B105  # development default, refused by ProductionConfig.validate
DEV_IDENTITY_SERVICE_APP_ID = "yhb-dev"
DEV_IDENTITY_SERVICE_SECRET = "dev-identity-service-secret"  # nosec B105  # development default, refused by ProductionConfig.validate
DEV_SEAL_MASTER_KEY = "dev1:ZGV2LW9ubHktc2VhbC1tYXN0ZXIta2V5LTMyLWJ5dGU="  # 32 dev bytes
DEV_SEAL_CODE_KEYS = "d:dev-only-seal-code-key-change-me"
DEV_AUDIT_MAC_KEY = "ZGV2LW9ubHktYXVkaXQtbWFjLWtleS0zMi1ieXRlcyE="  # 32 dev bytes
DEV_AUDIT_CHECKPOINT_KEY = "ZGV2LW9ubHktYXVkaXQtY2hlY2twb2ludC1zZWVkISE="  # 32 dev bytes


class ConfigError(RuntimeError):
    """The configuration is unsafe or incomplete for the chosen environment."""


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if not raw:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class BaseConfig:
    """Settings shared by every environment; subclasses change defaults only."""

    ENV_NAME: str = "base"
    SECRET_KEY: str = field(default_factory=lambda: _env("SECRET_KEY", DEV_SECRET_KEY))
    DATABASE_URL: str = field(
        default_factory=lambda: _env(
            "DATABASE_URL", f"sqlite:///{PROJECT_ROOT / 'var' / 'yuhaoban.db'}"
        )
    )
    # Empty means "no Redis": in-process cache, limits and events.
    REDIS_URL: str = field(default_factory=lambda: _env("REDIS_URL", ""))
    # Personal-data encryption keys: "kid:base64key,kid2:base64key"; the first one encrypts.
    DATA_KEYS: str = field(default_factory=lambda: _env("DATA_KEYS", f"dev1:{DEV_DATA_KEY}"))
    # Key of the keyed hashes that make encrypted values searchable for uniqueness; unlike
    # DATA_KEYS it cannot rotate without re-hashing every row.
    DATA_INDEX_KEY: str = field(default_factory=lambda: _env("DATA_INDEX_KEY", DEV_INDEX_KEY))

    # Access-token signing keys "kid:secret,kid2:secret" (kid: 1-16 of A-Z a-z 0-9 _ -; secret
    # at least 32 characters in production): the first signs and names itself in the token's
    # header, every one listed verifies. Empty: SECRET_KEY under kid "s0" (development only).
    JWT_SIGNING_KEYS: str = field(default_factory=lambda: _env("JWT_SIGNING_KEYS", ""))
    JWT_ISSUER: str = field(default_factory=lambda: _env("JWT_ISSUER", "yuhaoban"))
    JWT_AUDIENCE: str = field(default_factory=lambda: _env("JWT_AUDIENCE", "yuhaoban-api"))
    ACCESS_TOKEN_TTL_SECONDS: int = field(
        default_factory=lambda: _env_int("ACCESS_TOKEN_TTL_SECONDS", 900)
    )
    REFRESH_TOKEN_TTL_SECONDS: int = field(
        default_factory=lambda: _env_int("REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600)
    )
    # For this long after a refresh, the spent token presented again gets the same successor
    # (parallel requests of one mini-program) instead of ending the login; 0 turns it off.
    REFRESH_REUSE_GRACE_SECONDS: int = field(
        default_factory=lambda: _env_int("REFRESH_REUSE_GRACE_SECONDS", 10)
    )

    STAFF_MAX_FAILED_LOGINS: int = field(
        default_factory=lambda: _env_int("STAFF_MAX_FAILED_LOGINS", 5)
    )
    STAFF_LOCKOUT_MINUTES: int = field(
        default_factory=lambda: _env_int("STAFF_LOCKOUT_MINUTES", 15)
    )

    # Staff web console (/console): its session cookie ends after this much inactivity; a scan
    # login QR lives this long.
    CONSOLE_IDLE_MINUTES: int = field(default_factory=lambda: _env_int("CONSOLE_IDLE_MINUTES", 30))
    CONSOLE_SCAN_TTL_SECONDS: int = field(
        default_factory=lambda: _env_int("CONSOLE_SCAN_TTL_SECONDS", 120)
    )
    SESSION_COOKIE_NAME: str = "yhb_console"
    SESSION_COOKIE_HTTPONLY: bool = True
    SESSION_COOKIE_SAMESITE: str = "Lax"
    SESSION_COOKIE_SECURE: bool = field(
        default_factory=lambda: _env_bool("SESSION_COOKIE_SECURE", False)
    )
    # Strict-Transport-Security max-age on every response; 0 sends none (plain-HTTP development).
    HSTS_MAX_AGE_SECONDS: int = field(default_factory=lambda: _env_int("HSTS_MAX_AGE_SECONDS", 0))
    # Console forms carry Flask-WTF's token; it lives as long as the console session.
    WTF_CSRF_TIME_LIMIT: int | None = None

    WECHAT_APPID: str = field(default_factory=lambda: _env("WECHAT_APPID", DEV_WECHAT_APPID))
    WECHAT_SECRET: str = field(default_factory=lambda: _env("WECHAT_SECRET", DEV_WECHAT_SECRET))
    # "emulator" starts the local emulator on loopback; otherwise a base URL.
    WECHAT_API_BASE: str = field(default_factory=lambda: _env("WECHAT_API_BASE", "emulator"))
    WECHAT_EMULATOR_PORT: int = field(default_factory=lambda: _env_int("WECHAT_EMULATOR_PORT", 0))
    # "memory", "database" or "redis"; empty: redis when REDIS_URL is set, else database.
    WECHAT_TOKEN_CACHE: str = field(default_factory=lambda: _env("WECHAT_TOKEN_CACHE", ""))
    WECHAT_TIMEOUT_SECONDS: float = field(
        default_factory=lambda: float(_env("WECHAT_TIMEOUT_SECONDS", "5"))
    )
    WECHAT_PUSH_TOKEN: str = field(default_factory=lambda: _env("WECHAT_PUSH_TOKEN", ""))
    # Batches of subscribe messages go out from a child process of their own, so the GIL of
    # a busy worker does not leave their connections idle (`wechat.batch_sender`).
    WECHAT_BATCH_PROCESS: bool = field(
        default_factory=lambda: _env_bool("WECHAT_BATCH_PROCESS", True)
    )

    # The real-name / face verification service: a base URL, "emulator" (a local emulator on
    # loopback in this process) or "checksum" (format checks only; refused in production).
    IDENTITY_SERVICE_BASE: str = field(
        default_factory=lambda: _env("IDENTITY_SERVICE_BASE", "emulator")
    )
    IDENTITY_SERVICE_APP_ID: str = field(
        default_factory=lambda: _env("IDENTITY_SERVICE_APP_ID", DEV_IDENTITY_SERVICE_APP_ID)
    )
    IDENTITY_SERVICE_SECRET: str = field(
        default_factory=lambda: _env("IDENTITY_SERVICE_SECRET", DEV_IDENTITY_SERVICE_SECRET)
    )
    # The bank-account check of receiving accounts: a base URL, "emulator", or "exact_name"
    # (embedded: the holder's name must equal the enterprise's registered name).
    BANK_ACCOUNT_SERVICE_BASE: str = field(
        default_factory=lambda: _env("BANK_ACCOUNT_SERVICE_BASE", "exact_name")
    )
    BANK_ACCOUNT_SERVICE_APP_ID: str = field(
        default_factory=lambda: _env("BANK_ACCOUNT_SERVICE_APP_ID", "")
    )
    BANK_ACCOUNT_SERVICE_SECRET: str = field(
        default_factory=lambda: _env("BANK_ACCOUNT_SERVICE_SECRET", "")
    )
    # The city's personal-code (红棉码) service: a URL, `emulator`, or `disabled` (a district
    # not linked to it: terminals then read only the app's own personal code).
    CITY_CODE_SERVICE_BASE: str = field(
        default_factory=lambda: _env("CITY_CODE_SERVICE_BASE", "emulator")
    )
    CITY_CODE_SERVICE_APP_ID: str = field(
        default_factory=lambda: _env("CITY_CODE_SERVICE_APP_ID", "")
    )
    CITY_CODE_SERVICE_SECRET: str = field(
        default_factory=lambda: _env("CITY_CODE_SERVICE_SECRET", "")
    )
    # The data-sharing platform (数据共享) the approval rules read: a URL, or `embedded` (the
    # local tables in app/shared_data, for development, demos and a district not linked yet).
    SHARED_DATA_SERVICE_BASE: str = field(
        default_factory=lambda: _env("SHARED_DATA_SERVICE_BASE", "embedded")
    )
    SHARED_DATA_SERVICE_APP_ID: str = field(
        default_factory=lambda: _env("SHARED_DATA_SERVICE_APP_ID", "")
    )
    SHARED_DATA_SERVICE_SECRET: str = field(
        default_factory=lambda: _env("SHARED_DATA_SERVICE_SECRET", "")
    )
    # An instant approval waits at most this long for each lookup; then it goes to review.
    SHARED_DATA_TIMEOUT_SECONDS: float = field(
        default_factory=lambda: float(_env("SHARED_DATA_TIMEOUT_SECONDS", "2"))
    )
    VERIFICATION_TIMEOUT_SECONDS: float = field(
        default_factory=lambda: float(_env("VERIFICATION_TIMEOUT_SECONDS", "5"))
    )
    # How long a face verification counts as recent for the actions that need one.
    FACE_RECENT_SECONDS: int = field(default_factory=lambda: _env_int("FACE_RECENT_SECONDS", 600))

    # "inprocess" runs background jobs on a thread here; "dramatiq" sends them to workers.
    JOB_RUNNER: str = field(default_factory=lambda: _env("JOB_RUNNER", "inprocess"))
    # With dramatiq: "process" = one `flask jobs scheduler` (a leader lease in Redis) runs the
    # periodic work; empty = every worker takes part, one elected per interval.
    JOB_SCHEDULER: str = field(default_factory=lambda: _env("JOB_SCHEDULER", ""))
    JOB_SCHEDULER_LEASE_SECONDS: float = field(
        default_factory=lambda: float(_env("JOB_SCHEDULER_LEASE_SECONDS", "15"))
    )
    # With dramatiq: the longest an idle worker waits to ask Redis for messages again.
    JOB_IDLE_POLL_MS: int = field(default_factory=lambda: _env_int("JOB_IDLE_POLL_MS", 100))

    # Subscribe-message templates: JSON {"queue_called": "<template id>", ...} or
    # {"key": {"id": ..., "long_term": true}}; empty means the emulator's demo templates.
    WECHAT_TEMPLATES: str = field(default_factory=lambda: _env("WECHAT_TEMPLATES", ""))
    DRAMATIQ_NAMESPACE: str = field(default_factory=lambda: _env("DRAMATIQ_NAMESPACE", "yuhaoban"))
    NOTIFY_POLL_SECONDS: float = field(
        default_factory=lambda: float(_env("NOTIFY_POLL_SECONDS", "5"))
    )
    NOTIFY_BATCH_SIZE: int = field(default_factory=lambda: _env_int("NOTIFY_BATCH_SIZE", 50))
    NOTIFY_LEASE_SECONDS: float = field(
        default_factory=lambda: float(_env("NOTIFY_LEASE_SECONDS", "60"))
    )
    NOTIFY_MAX_ATTEMPTS: int = field(default_factory=lambda: _env_int("NOTIFY_MAX_ATTEMPTS", 6))
    NOTIFY_RETRY_BASE_SECONDS: float = field(
        default_factory=lambda: float(_env("NOTIFY_RETRY_BASE_SECONDS", "30"))
    )
    NOTIFY_SWEEP_SECONDS: int = field(default_factory=lambda: _env_int("NOTIFY_SWEEP_SECONDS", 15))
    # WeChat sends per window, one limit for every sender: notifications and policy pushes,
    # of every worker on Redis, or of this process in-process (`app.jobs.send_gate`).
    NOTIFY_SEND_RATE_LIMIT: int = field(
        default_factory=lambda: _env_int("NOTIFY_SEND_RATE_LIMIT", 20)
    )
    NOTIFY_SEND_RATE_WINDOW_SECONDS: int = field(
        default_factory=lambda: _env_int("NOTIFY_SEND_RATE_WINDOW_SECONDS", 1)
    )
    # Of each window, the sends a policy push drain leaves to citizens' notifications.
    NOTIFY_SEND_RATE_RESERVED: int = field(
        default_factory=lambda: _env_int("NOTIFY_SEND_RATE_RESERVED", 5)
    )

    # --- Appointments, ratings (好差评) and queue statistics ---
    APPOINTMENT_DAYS_AHEAD: int = field(
        default_factory=lambda: _env_int("APPOINTMENT_DAYS_AHEAD", 7)
    )
    APPOINTMENT_SLOT_MINUTES: int = field(
        default_factory=lambda: _env_int("APPOINTMENT_SLOT_MINUTES", 30)
    )
    APPOINTMENT_SLOT_CAPACITY: int = field(
        default_factory=lambda: _env_int("APPOINTMENT_SLOT_CAPACITY", 4)
    )
    APPOINTMENT_CHECKIN_EARLY_MINUTES: int = field(
        default_factory=lambda: _env_int("APPOINTMENT_CHECKIN_EARLY_MINUTES", 30)
    )
    APPOINTMENT_CHECKIN_LATE_MINUTES: int = field(
        default_factory=lambda: _env_int("APPOINTMENT_CHECKIN_LATE_MINUTES", 15)
    )
    # N misses within the window suspend booking for the given days.
    # The subscribe-message reminder goes this long before the slot starts.
    APPOINTMENT_REMINDER_MINUTES: int = field(
        default_factory=lambda: _env_int("APPOINTMENT_REMINDER_MINUTES", 120)
    )
    APPOINTMENT_MISS_LIMIT: int = field(
        default_factory=lambda: _env_int("APPOINTMENT_MISS_LIMIT", 3)
    )
    APPOINTMENT_MISS_WINDOW_DAYS: int = field(
        default_factory=lambda: _env_int("APPOINTMENT_MISS_WINDOW_DAYS", 30)
    )
    APPOINTMENT_SUSPENSION_DAYS: int = field(
        default_factory=lambda: _env_int("APPOINTMENT_SUSPENSION_DAYS", 7)
    )
    RATING_WINDOW_DAYS: int = field(default_factory=lambda: _env_int("RATING_WINDOW_DAYS", 7))
    RATING_COMMENT_MAX_LENGTH: int = field(
        default_factory=lambda: _env_int("RATING_COMMENT_MAX_LENGTH", 500)
    )
    # Working days a hall manager has to rectify a 不满意/非常不满意 rating.
    RATING_FOLLOWUP_WORKING_DAYS: int = field(
        default_factory=lambda: _env_int("RATING_FOLLOWUP_WORKING_DAYS", 3)
    )
    QUEUE_STATS_MAX_DAYS: int = field(default_factory=lambda: _env_int("QUEUE_STATS_MAX_DAYS", 31))

    RATELIMIT_ENABLED: bool = field(default_factory=lambda: _env_bool("RATELIMIT_ENABLED", True))
    # How many reverse proxies (load balancer, ingress) stand in front of the app and append to
    # X-Forwarded-For. 0 (direct): the header is the client's own claim and is ignored. Set it
    # to exactly the number of hops, or clients could choose their address for rate limits.
    PROXY_COUNT: int = field(default_factory=lambda: _env_int("PROXY_COUNT", 0))
    RATELIMIT_LOGIN: str = field(default_factory=lambda: _env("RATELIMIT_LOGIN", "20/minute"))

    # --- Halls and queueing (issue 3) ---
    # Hall-code signing keys "kid:secret,..." (kid ≤ 4 letters/digits); the first signs, all
    # verify. Empty: one key derived from SECRET_KEY (development only).
    QUEUE_CODE_KEYS: str = field(default_factory=lambda: _env("QUEUE_CODE_KEYS", ""))
    QUEUE_CODE_RADIUS_METERS: int = field(
        default_factory=lambda: _env_int("QUEUE_CODE_RADIUS_METERS", 500)
    )
    QUEUE_DYNAMIC_CODE_PERIOD_SECONDS: int = field(
        default_factory=lambda: _env_int("QUEUE_DYNAMIC_CODE_PERIOD_SECONDS", 30)
    )
    QUEUE_PERSONAL_CODE_TTL_SECONDS: int = field(
        default_factory=lambda: _env_int("QUEUE_PERSONAL_CODE_TTL_SECONDS", 60)
    )
    QUEUE_GREEN_CHANNEL_AGE: int = field(
        default_factory=lambda: _env_int("QUEUE_GREEN_CHANNEL_AGE", 60)
    )
    QUEUE_MAX_RECALLS: int = field(default_factory=lambda: _env_int("QUEUE_MAX_RECALLS", 2))
    QUEUE_LATE_RETURN_PLACES: int = field(
        default_factory=lambda: _env_int("QUEUE_LATE_RETURN_PLACES", 3)
    )
    QUEUE_NEAR_NOTICE_AHEAD: int = field(
        default_factory=lambda: _env_int("QUEUE_NEAR_NOTICE_AHEAD", 3)
    )
    # How old a hall's wait forecast may be when a process answers from it (positions are
    # always counted afresh); 0 replays the queue for every estimate.
    QUEUE_FORECAST_MAX_AGE_SECONDS: int = field(
        default_factory=lambda: _env_int("QUEUE_FORECAST_MAX_AGE_SECONDS", 5)
    )
    # How often a quiet hall-screen stream says it is alive (a comment line), so proxies keep
    # it open and a screen notices a dead connection.
    QUEUE_SSE_KEEPALIVE_SECONDS: float = field(
        default_factory=lambda: float(_env("QUEUE_SSE_KEEPALIVE_SECONDS", "15"))
    )
    # The mini-program page a printed hall code's mini-program code (wxacode) opens; the
    # page reads the hall-code token from its `scene` and scans it like a QR code.
    QUEUE_WXACODE_PAGE: str = field(
        default_factory=lambda: _env("QUEUE_WXACODE_PAGE", "pages/queue/scan")
    )
    RATELIMIT_TAKE_TICKET: str = field(
        default_factory=lambda: _env("RATELIMIT_TAKE_TICKET", "30/minute")
    )
    # --- end halls and queueing ---

    # --- Policy push (issue 5, app/policies) ---
    # Per enterprise: at most this many distinct policies pushed per Shanghai day / 7 days.
    POLICY_PUSH_PER_DAY: int = field(default_factory=lambda: _env_int("POLICY_PUSH_PER_DAY", 1))
    POLICY_PUSH_PER_WEEK: int = field(default_factory=lambda: _env_int("POLICY_PUSH_PER_WEEK", 3))
    # No push in these Asia/Shanghai hours ("start-end", may wrap midnight); they wait.
    POLICY_PUSH_QUIET_HOURS: str = field(
        default_factory=lambda: _env("POLICY_PUSH_QUIET_HOURS", "21:00-08:00")
    )
    # Pushes on the wire at once per drain (at most this many are in doubt when a worker dies)
    # and pushes a drain claims at once (then sent a batch at a time).
    POLICY_PUSH_BATCH: int = field(default_factory=lambda: _env_int("POLICY_PUSH_BATCH", 50))
    POLICY_PUSH_CLAIM: int = field(default_factory=lambda: _env_int("POLICY_PUSH_CLAIM", 200))
    POLICY_PUSH_LEASE_SECONDS: int = field(
        default_factory=lambda: _env_int("POLICY_PUSH_LEASE_SECONDS", 60)
    )
    POLICY_PUSH_MAX_ATTEMPTS: int = field(
        default_factory=lambda: _env_int("POLICY_PUSH_MAX_ATTEMPTS", 5)
    )
    POLICY_PUSH_RETRY_BASE_SECONDS: int = field(
        default_factory=lambda: _env_int("POLICY_PUSH_RETRY_BASE_SECONDS", 60)
    )
    POLICY_PUSH_POLL_SECONDS: int = field(
        default_factory=lambda: _env_int("POLICY_PUSH_POLL_SECONDS", 5)
    )
    # Concurrent WeChat requests (connections) per worker process while sending a batch.
    POLICY_PUSH_CONNECTIONS: int = field(
        default_factory=lambda: _env_int("POLICY_PUSH_CONNECTIONS", 8)
    )
    # --- end policy push ---

    MAX_CONTENT_LENGTH: int = field(
        default_factory=lambda: _env_int("MAX_CONTENT_LENGTH", 1 * 1024 * 1024)
    )
    LOG_LEVEL: str = field(default_factory=lambda: _env("LOG_LEVEL", "INFO"))
    # Bearer token Prometheus presents at GET /metrics; empty: loopback callers only
    # (blueprints/health/scraper.py). Production requires one.
    METRICS_TOKEN: str = field(default_factory=lambda: _env("METRICS_TOKEN", ""))
    SEED_DEMO_DATA: bool = False

    # --- Audit log (app/audit) ---
    # Keys of the entries' links (HMAC-SHA256): "kid:base64(32 bytes),..."; the first one
    # links new entries, every one listed verifies (keep retired keys listed).
    AUDIT_MAC_KEYS: str = field(
        default_factory=lambda: _env("AUDIT_MAC_KEYS", f"dev1:{DEV_AUDIT_MAC_KEY}")
    )
    # Ed25519 keys (base64 of the 32-byte private seed) signing the chain checkpoints, same
    # "kid:base64,..." form: the first signs, every one listed verifies.
    AUDIT_CHECKPOINT_KEYS: str = field(
        default_factory=lambda: _env("AUDIT_CHECKPOINT_KEYS", f"dev1:{DEV_AUDIT_CHECKPOINT_KEY}")
    )
    # Where the signed checkpoints go: outside the database, by default beside the signed
    # documents (SEAL_STORAGE_DIR), so that whoever rewrites the database cannot rewind them.
    AUDIT_CHECKPOINT_DIR: str = field(
        default_factory=lambda: _env(
            "AUDIT_CHECKPOINT_DIR",
            str(
                Path(_env("SEAL_STORAGE_DIR", str(PROJECT_ROOT / "var" / "seals" / "documents")))
                / "audit-checkpoints"
            ),
        )
    )

    # --- Electronic seals (seals/, app/seals) ---
    # Wraps each seal/CA key's own data key: "kid:base64(32 bytes),..."; the first wraps new keys.
    SEAL_MASTER_KEY: str = field(
        default_factory=lambda: _env("SEAL_MASTER_KEY", DEV_SEAL_MASTER_KEY)
    )
    # Keys of the tags in verification codes: "k:secret,j:secret" (one-character ids).
    SEAL_CODE_KEYS: str = field(default_factory=lambda: _env("SEAL_CODE_KEYS", DEV_SEAL_CODE_KEYS))
    SEAL_PKI_DIR: str = field(
        default_factory=lambda: _env("SEAL_PKI_DIR", str(PROJECT_ROOT / "var" / "seals" / "pki"))
    )
    # Applicants' uploaded materials (content-addressed files) and the largest one accepted.
    MATERIALS_STORAGE_DIR: str = field(
        default_factory=lambda: _env(
            "MATERIALS_STORAGE_DIR", str(PROJECT_ROOT / "var" / "materials")
        )
    )
    MATERIAL_MAX_BYTES: int = field(
        default_factory=lambda: _env_int("MATERIAL_MAX_BYTES", 10 * 1024 * 1024)
    )
    SEAL_STORAGE_DIR: str = field(
        default_factory=lambda: _env(
            "SEAL_STORAGE_DIR", str(PROJECT_ROOT / "var" / "seals" / "documents")
        )
    )
    # Derived from the pinned font package and keyed by its version: one per user, shared by
    # checkouts and test sessions (built by `make install`).
    SEAL_FONT_CACHE_DIR: str = field(
        default_factory=lambda: _env("SEAL_FONT_CACHE_DIR", str(_user_cache_dir() / "fonts"))
    )
    # Printed in QR codes and named in certificates (CRL): the public address of this server.
    SEAL_PUBLIC_BASE_URL: str = field(
        default_factory=lambda: _env("SEAL_PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    )
    # A timestamp authority (RFC 3161) makes signatures PAdES B-T / B-LTA; empty: B-LT.
    SEAL_TSA_URL: str = field(default_factory=lambda: _env("SEAL_TSA_URL", ""))
    # "software" (envelope-encrypted keys in the database) or "pkcs11" (an HSM).
    SEAL_KEY_PROVIDER: str = field(default_factory=lambda: _env("SEAL_KEY_PROVIDER", "software"))
    SEAL_PKCS11_LIBRARY: str = field(default_factory=lambda: _env("SEAL_PKCS11_LIBRARY", ""))
    SEAL_PKCS11_TOKEN: str = field(default_factory=lambda: _env("SEAL_PKCS11_TOKEN", ""))
    SEAL_PKCS11_PIN: str = field(default_factory=lambda: _env("SEAL_PKCS11_PIN", ""))
    SEAL_MAX_UPLOAD_BYTES: int = field(
        default_factory=lambda: _env_int("SEAL_MAX_UPLOAD_BYTES", 1024 * 1024)
    )

    # Fixed for every environment: flask-smorest's OpenAPI settings.
    API_TITLE: str = "禺好办 API"
    API_VERSION: str = "v1"
    OPENAPI_VERSION: str = "3.0.3"
    OPENAPI_URL_PREFIX: str = "/api"
    OPENAPI_JSON_PATH: str = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH: str = "docs"
    # Served by blueprints/docs from the swagger-ui-bundle package: no CDN needed.
    OPENAPI_SWAGGER_UI_URL: str = "/api/docs-assets/"
    # Every non-public view takes `Authorization: Bearer <access token>` (see blueprints/authz);
    # the screen views also a hall display's `Authorization: Display <token>`.
    API_SPEC_OPTIONS: dict[str, object] = field(
        default_factory=lambda: {
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                    # A hall screen's own token, registered under /halls/{id}/displays.
                    "displayToken": {
                        "type": "http",
                        "scheme": "display",
                        "description": "大厅屏令牌：Authorization: Display <token>",
                    },
                }
            },
            "security": [{"bearerAuth": []}],
        }
    )

    @property
    def uses_emulator(self) -> bool:
        return self.WECHAT_API_BASE == "emulator"

    @property
    def uses_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")

    def validate(self) -> None:
        """Refuse settings that are unsafe for this environment."""

    def as_flask_config(self) -> dict[str, object]:
        values: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        values["ENV_NAME"] = self.ENV_NAME
        return values


@dataclass
class DevelopmentConfig(BaseConfig):
    ENV_NAME: str = "development"
    SEED_DEMO_DATA: bool = True


@dataclass
class TestingConfig(BaseConfig):
    ENV_NAME: str = "testing"
    TESTING: bool = True
    JOB_RUNNER: str = field(default_factory=lambda: _env("JOB_RUNNER", "manual"))
    # Flask-Limiter keeps its switch on the one Limiter object; tests that need limits turn
    # them on for their own app.
    RATELIMIT_ENABLED: bool = field(default_factory=lambda: _env_bool("RATELIMIT_ENABLED", False))
    ACCESS_TOKEN_TTL_SECONDS: int = 300
    LOG_LEVEL: str = "WARNING"
    # A child process per app would cost every test that sends a batch its start; the tests
    # of `wechat.batch_sender` and of the push worker's processes start theirs.
    WECHAT_BATCH_PROCESS: bool = field(
        default_factory=lambda: _env_bool("WECHAT_BATCH_PROCESS", False)
    )
    # Tests move the clock and the queue at will: every estimate replays afresh.
    QUEUE_FORECAST_MAX_AGE_SECONDS: int = field(
        default_factory=lambda: _env_int("QUEUE_FORECAST_MAX_AGE_SECONDS", 0)
    )
    # A client that reads a stream until the first keep-alive (the contract test) waits 1 s.
    QUEUE_SSE_KEEPALIVE_SECONDS: float = field(
        default_factory=lambda: float(_env("QUEUE_SSE_KEEPALIVE_SECONDS", "1"))
    )


def _template_problems(raw: str) -> list[str]:
    """Production sends every kind of message: each needs the mini-program's real template id."""
    if not raw.strip():
        return ["WECHAT_TEMPLATES must name the mini-program's real template ids"]
    try:
        configured = json.loads(raw)
    except ValueError:
        return ["WECHAT_TEMPLATES must be JSON: notification key -> template id"]
    if not isinstance(configured, dict):
        return ["WECHAT_TEMPLATES must be a JSON object: notification key -> template id"]
    missing = sorted(set(DEFAULT_TEMPLATES) - set(configured))
    if missing:
        return ["WECHAT_TEMPLATES lacks a template id for: " + ", ".join(missing)]
    return []


def _jwt_key_problems(spec: str, secret_key: str) -> list[str]:
    """Production signs access tokens with named keys of its own, not with SECRET_KEY."""
    entries = [part.strip() for part in spec.split(",") if part.strip()]
    if not entries:
        return ["JWT_SIGNING_KEYS must be set (kid:secret,... for access tokens)"]
    secrets = [entry.partition(":")[2] for entry in entries]
    if any(len(secret) < 32 or secret in (secret_key, DEV_SECRET_KEY) for secret in secrets):
        return [
            "JWT_SIGNING_KEYS: each secret must be random, at least 32 characters, "
            "and not SECRET_KEY"
        ]
    return []


@dataclass
class ProductionConfig(BaseConfig):
    ENV_NAME: str = "production"
    # The console cookie travels over HTTPS only (the balancer terminates TLS).
    SESSION_COOKIE_SECURE: bool = field(
        default_factory=lambda: _env_bool("SESSION_COOKIE_SECURE", True)
    )
    # Browsers keep to HTTPS for a year once they have seen the site.
    HSTS_MAX_AGE_SECONDS: int = field(
        default_factory=lambda: _env_int("HSTS_MAX_AGE_SECONDS", 365 * 24 * 3600)
    )

    def validate(self) -> None:
        problems = []
        if self.SECRET_KEY in ("", DEV_SECRET_KEY) or len(self.SECRET_KEY) < 32:
            problems.append("SECRET_KEY must be set to a random value of at least 32 characters")
        problems.extend(_jwt_key_problems(self.JWT_SIGNING_KEYS, self.SECRET_KEY))
        if self.uses_sqlite:
            problems.append("DATABASE_URL must point at PostgreSQL, not SQLite")
        if self.uses_emulator or not self.WECHAT_API_BASE.startswith("https://"):
            problems.append("WECHAT_API_BASE must be the real API (https://api.weixin.qq.com)")
        if self.WECHAT_SECRET in ("", DEV_WECHAT_SECRET):
            problems.append("WECHAT_SECRET must be set")
        if DEV_DATA_KEY in self.DATA_KEYS:
            problems.append("DATA_KEYS must not contain the development key")
        if self.DATA_INDEX_KEY in ("", DEV_INDEX_KEY):
            problems.append("DATA_INDEX_KEY must be set")
        problems.extend(_template_problems(self.WECHAT_TEMPLATES))
        if self.JOB_RUNNER != "dramatiq":
            problems.append("JOB_RUNNER must be dramatiq (workers on Redis)")
        if DEV_SEAL_MASTER_KEY in self.SEAL_MASTER_KEY or self.SEAL_CODE_KEYS == DEV_SEAL_CODE_KEYS:
            problems.append("SEAL_MASTER_KEY and SEAL_CODE_KEYS must not be the development keys")
        if not self.REDIS_URL:
            problems.append("REDIS_URL must be set (rate limits, token cache, events)")
        if len(self.METRICS_TOKEN) < 32:
            problems.append("METRICS_TOKEN must be a random value of at least 32 characters")
        if DEV_AUDIT_MAC_KEY in self.AUDIT_MAC_KEYS or not self.AUDIT_MAC_KEYS.strip():
            problems.append("AUDIT_MAC_KEYS must be set and must not be the development key")
        if (
            DEV_AUDIT_CHECKPOINT_KEY in self.AUDIT_CHECKPOINT_KEYS
            or not self.AUDIT_CHECKPOINT_KEYS.strip()
        ):
            problems.append("AUDIT_CHECKPOINT_KEYS must be set and must not be the development key")
        if not (
            self.SHARED_DATA_SERVICE_BASE == "embedded"
            or self.SHARED_DATA_SERVICE_BASE.startswith("https://")
        ):
            problems.append("SHARED_DATA_SERVICE_BASE must be embedded or https://...")
        if not 0 < self.SHARED_DATA_TIMEOUT_SECONDS <= 10:
            problems.append("SHARED_DATA_TIMEOUT_SECONDS must be within (0, 10]")
        if not 0 <= self.REFRESH_REUSE_GRACE_SECONDS <= 60:
            # A long grace would let a stolen refresh token be replayed without revoking.
            problems.append("REFRESH_REUSE_GRACE_SECONDS must be between 0 and 60")
        if self.IDENTITY_SERVICE_BASE in ("checksum", "emulator") or not (
            self.IDENTITY_SERVICE_BASE.startswith("https://")
        ):
            # A check digit proves nothing about who is holding the phone.
            problems.append("IDENTITY_SERVICE_BASE must be the real-name service (https://...)")
        if self.IDENTITY_SERVICE_SECRET in ("", DEV_IDENTITY_SERVICE_SECRET):
            problems.append("IDENTITY_SERVICE_SECRET must be set")
        if not (
            self.CITY_CODE_SERVICE_BASE == "disabled"
            or self.CITY_CODE_SERVICE_BASE.startswith("https://")
        ):
            problems.append("CITY_CODE_SERVICE_BASE must be disabled or https://...")
        if self.BANK_ACCOUNT_SERVICE_BASE == "emulator" or not (
            self.BANK_ACCOUNT_SERVICE_BASE == "exact_name"
            or self.BANK_ACCOUNT_SERVICE_BASE.startswith("https://")
        ):
            problems.append("BANK_ACCOUNT_SERVICE_BASE must be exact_name or https://...")
        if not 60 <= self.FACE_RECENT_SECONDS <= 1800:
            problems.append("FACE_RECENT_SECONDS must be between 60 and 1800")
        if not self.QUEUE_CODE_KEYS.strip():
            # Empty derives the hall-code key from SECRET_KEY: a development convenience only.
            problems.append("QUEUE_CODE_KEYS must be set (kid:secret,... for hall codes)")
        # Checked here rather than at the first print: a bad page fails every code WeChat draws.
        from wechat.wxacode import page_problem

        page_error = page_problem(self.QUEUE_WXACODE_PAGE) if self.QUEUE_WXACODE_PAGE else "empty"
        if page_error:
            problems.append(f"QUEUE_WXACODE_PAGE must be a mini-program page path ({page_error})")
        if problems:
            raise ConfigError("refusing to start in production: " + "; ".join(problems))


CONFIGS: dict[str, type[BaseConfig]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config(name: str | None = None) -> BaseConfig:
    """Build the settings for `name` (default: $APP_ENV, else development) and validate them."""
    name = name or os.environ.get("APP_ENV", "development")
    try:
        config = CONFIGS[name]()
    except KeyError:
        raise ConfigError(f"unknown APP_ENV {name!r}; expected one of {sorted(CONFIGS)}") from None
    config.validate()
    return config
