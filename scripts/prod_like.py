"""The production topology on this machine: `make prod-like`, `make prod-like-stop`.

`python scripts/prod_like.py start|stop|status` starts or stops, against the local PostgreSQL
and Redis, with production settings (APP_ENV=production, secrets generated once into
var/prod-like/env, mode 0600):

- the WeChat emulator and the identity / city-code emulator, served over TLS with a CA and a
  certificate made here (`REQUESTS_CA_BUNDLE` points the app at the CA);
- PostgreSQL database `yhb_prodlike`: created, migrated and seeded with the demo data (the
  seeding runs as development against the same database and keys: production refuses demo
  data, and that refusal stays);
- two gunicorn instances (gunicorn.conf.py) behind HAProxy (deploy/haproxy.cfg.template);
- Dramatiq workers, and two schedulers (`flask jobs scheduler`), of which one leads.

Each process runs in its own session with its log (JSON lines) and pid in var/prod-like/;
`state.json` there says where everything is. Tests drive the same code through `Topology`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
STATE_DIR = ROOT / "var" / "prod-like"
WECHAT_APPID = "wxprodlike0000001"
IDENTITY_APP_ID = "yhb-prodlike"
STOP_TIMEOUT_SECONDS = 35.0  # above gunicorn's graceful_timeout (30 s)
READY_TIMEOUT_SECONDS = 120.0


@dataclass
class Ports:
    balancer: int = 8800
    web: tuple[int, ...] = (8801, 8802)
    wechat: int = 8803
    identity: int = 8804
    # A private redis-server for the topology (None: the machine's Redis, database 13).
    redis: int | None = None

    @classmethod
    def from_env(cls) -> Ports:
        base = int(os.environ.get("PRODLIKE_BASE_PORT", "8800"))
        private = os.environ.get("PRODLIKE_PRIVATE_REDIS", "") not in ("", "0")
        return cls(
            balancer=base,
            web=(base + 1, base + 2),
            wechat=base + 3,
            identity=base + 4,
            redis=base + 5 if private else None,
        )


# -- secrets and TLS ------------------------------------------------------------------------


def _key32() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _generate_secrets() -> dict[str, str]:
    """Every secret production demands, fresh and random."""
    from wechat.templates import DEFAULT_TEMPLATES

    secret_key = secrets.token_urlsafe(48)
    return {
        "SECRET_KEY": secret_key,
        "JWT_SIGNING_KEYS": f"p1:{secrets.token_urlsafe(48)}",
        "DATA_KEYS": f"p1:{_key32()}",
        "DATA_INDEX_KEY": secrets.token_urlsafe(32),
        "QUEUE_CODE_KEYS": f"p1:{secrets.token_urlsafe(32)}",
        "SEAL_MASTER_KEY": f"p1:{_key32()}",
        "SEAL_CODE_KEYS": f"p:{secrets.token_urlsafe(32)}",
        "AUDIT_MAC_KEYS": f"p1:{_key32()}",
        "AUDIT_CHECKPOINT_KEYS": f"p1:{_key32()}",
        "WECHAT_SECRET": secrets.token_hex(16),
        "IDENTITY_SERVICE_SECRET": secrets.token_urlsafe(32),
        "METRICS_TOKEN": secrets.token_urlsafe(32),
        "WECHAT_PUSH_TOKEN": secrets.token_urlsafe(16),
        # The emulator's template ids (it accepts any): one per kind, as production demands.
        "WECHAT_TEMPLATES": json.dumps({key: f"tmpl-{key}" for key in DEFAULT_TEMPLATES}),
    }


def load_or_create_secrets(path: Path) -> dict[str, str]:
    """The env file's secrets; generated on the first start, then reused as they are."""
    if path.exists():
        values: dict[str, str] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                name, _, value = line.partition("=")
                values[name] = json.loads(value) if value.startswith('"') else value
        return _with_new_template_kinds(values)
    values = _generate_secrets()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("# make prod-like: secrets generated once, reused on every start\n")
        for name, value in values.items():
            out.write(f"{name}={json.dumps(value)}\n")
    return values


def _with_new_template_kinds(values: dict[str, str]) -> dict[str, str]:
    """An env file written before a kind of message existed names no template for it, and
    production refuses to start without one: the emulator's id is added (the file is kept
    as it is; the ids it names stay)."""
    from wechat.templates import DEFAULT_TEMPLATES

    ids = json.loads(values.get("WECHAT_TEMPLATES") or "{}")
    missing = {key: f"tmpl-{key}" for key in DEFAULT_TEMPLATES if key not in ids}
    if missing:
        values["WECHAT_TEMPLATES"] = json.dumps({**ids, **missing})
    return values


def _ca_key_usage() -> Any:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        crl_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def ensure_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A local CA and a server certificate for 127.0.0.1 / localhost it signed (made once)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
    )
    if ca_path.exists() and cert_path.exists() and key_path.exists():
        return ca_path, cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "yuhaoban prod-like CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=397))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            server_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return ca_path, cert_path, key_path


def serve_emulator(kind: str, port: int, cert: str, key: str, apps: list[str]) -> None:
    """Serve one emulator over TLS in the foreground (run by the launcher as its own process)."""
    import logging

    from werkzeug.serving import make_server

    pairs = dict(item.split(":", 1) for item in apps)
    wsgi: Any
    if kind == "wechat":
        from wechat.emulator import Emulator as WeChatEmulator
        from wechat.templates import DEFAULT_TEMPLATES

        # Production names each template by the id WeChat gave it (WECHAT_TEMPLATES); the
        # emulator must know the same ids, or it refuses every message the app sends.
        ids = json.loads(os.environ.get("WECHAT_TEMPLATES") or "{}")
        templates = {ids.get(key, key): spec for key, spec in DEFAULT_TEMPLATES.items()}
        wsgi = WeChatEmulator(pairs, templates=templates).wsgi_app
    else:
        from verification.emulator import Emulator as VerificationEmulator

        wsgi = VerificationEmulator(pairs).wsgi_app
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    logging.basicConfig(level=logging.WARNING)
    server = make_server("127.0.0.1", port, wsgi, threaded=True, ssl_context=context)
    # SIGTERM's default action ends it: an emulator has nothing to finish.
    server.serve_forever()


# -- processes ------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is gone for our purposes (its parent, maybe us, has not reaped it yet).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


# The workers and schedulers share this machine's two cores with the app instances: a push
# draining or a sweep running should not stretch a citizen's request (bench/rush_hour.py).
# PRODLIKE_BACKGROUND_NICENESS=0 runs them at the same priority.
BACKGROUND_NICENESS = int(os.environ.get("PRODLIKE_BACKGROUND_NICENESS", "10"))


@dataclass
class Process:
    """A process of the topology: its own session (pgid == pid), a log and a pid file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    directory: Path
    # Background work yields the CPU to requests on a host both share (nice(1)); on their own
    # hosts (README: several machines) it makes no difference.
    niceness: int = 0
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid_file(self) -> Path:
        return self.directory / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / f"{self.name}.log"

    def start(self) -> int:
        with self.log_file.open("ab") as log:
            argv = ["nice", "-n", str(self.niceness), *self.argv] if self.niceness else self.argv
            self.popen = subprocess.Popen(  # noqa: S603  # nosec B603  # our own argv
                argv,
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(self.popen.pid))
        return self.popen.pid

    @property
    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None

    def signal(self, sig: int) -> None:
        pid = self.pid
        if pid is not None:
            _signal_group(pid, sig)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS, *, kill: bool = False) -> None:
        """SIGTERM the process group, wait, SIGKILL only after `timeout` (or at once: kill)."""
        pid = self.pid
        if pid is None:
            return
        _signal_group(pid, signal.SIGKILL if kill else signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _group_alive(pid) and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.1)
        if _group_alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while _group_alive(pid):
                self._reap()
                time.sleep(0.05)
        self._reap()
        self.pid_file.unlink(missing_ok=True)

    def _reap(self) -> None:
        if self.popen is not None:
            self.popen.poll()


def _wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # anything short of ready: keep polling
            last = exc
        time.sleep(0.25)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s ({last})")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _http_status(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310  # nosec B310  # our own loopback URL
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


# -- the topology ---------------------------------------------------------------------------


def haproxy_config(*, stats_socket: Path, bind: str, web_ports: Sequence[int]) -> str:
    """deploy/haproxy.cfg.template for app instances on these local ports."""
    template = string.Template((ROOT / "deploy" / "haproxy.cfg.template").read_text())
    primaries = [
        f"    server web{i + 1} 127.0.0.1:{port} check" for i, port in enumerate(web_ports)
    ]
    fallbacks = [
        f"    server web{i + 1}-fallback 127.0.0.1:{port} backup"
        for i, port in enumerate(web_ports)
    ]
    return template.substitute(
        stats_socket=str(stats_socket), bind=bind, servers="\n".join(primaries + fallbacks)
    )


class Topology:
    """Start, stop and restart the parts of the production topology on this machine."""

    def __init__(
        self,
        *,
        directory: Path = STATE_DIR,
        ports: Ports | None = None,
        database: str = "yhb_prodlike",
        pg_host: str = os.environ.get("PGHOST", "127.0.0.1"),
        pg_user: str = os.environ.get("PGUSER", "postgres"),
        workers: int = 1,
        web_concurrency: int = 2,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.ports = ports or Ports.from_env()
        self.database = database
        self.pg_host = pg_host
        self.pg_user = pg_user
        self.workers = workers
        self.web_concurrency = web_concurrency
        self.overrides = dict(overrides or {})
        self.env_file = directory / "env"
        self.state_file = directory / "state.json"
        self.haproxy_cfg = directory / "haproxy.cfg"
        self.stats_socket = directory / "haproxy.sock"

    # -- settings ---------------------------------------------------------------------------

    @property
    def database_url(self) -> str:
        return f"postgresql+psycopg://{self.pg_user}@{self.pg_host}:5432/{self.database}"

    @property
    def redis_url(self) -> str:
        if self.ports.redis is not None:
            return f"redis://127.0.0.1:{self.ports.redis}/0"
        return "redis://127.0.0.1:6379/13"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.balancer}"

    @property
    def web_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports.web]

    @property
    def wechat_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.wechat}"

    @property
    def identity_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.identity}"

    def environment(self) -> dict[str, str]:
        """The environment every app process of the topology runs with."""
        tls = self.directory / "tls"
        ca, _, _ = ensure_tls(tls)
        data = self.directory / "data"
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("APP_", "DATABASE_", "REDIS_", "PROMETHEUS_"))
        }
        env.update(load_or_create_secrets(self.env_file))
        env.update(
            {
                "APP_ENV": "production",
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "JOB_RUNNER": "dramatiq",
                "JOB_SCHEDULER": "process",
                "DRAMATIQ_NAMESPACE": "yhb-prodlike",
                "WECHAT_APPID": WECHAT_APPID,
                "WECHAT_API_BASE": self.wechat_url,
                "IDENTITY_SERVICE_BASE": self.identity_url,
                "IDENTITY_SERVICE_APP_ID": IDENTITY_APP_ID,
                "CITY_CODE_SERVICE_BASE": self.identity_url,
                "SHARED_DATA_SERVICE_BASE": "embedded",
                "BANK_ACCOUNT_SERVICE_BASE": "exact_name",
                "REQUESTS_CA_BUNDLE": str(ca),
                "SEAL_PKI_DIR": str(data / "seals" / "pki"),
                "SEAL_STORAGE_DIR": str(data / "seals" / "documents"),
                "AUDIT_CHECKPOINT_DIR": str(data / "seals" / "documents" / "audit-checkpoints"),
                "MATERIALS_STORAGE_DIR": str(data / "materials"),
                "SEAL_PUBLIC_BASE_URL": self.base_url,
                # The balancer speaks plain HTTP on loopback here; on a real site it terminates
                # TLS and the console cookie stays HTTPS-only (the production default).
                "SESSION_COOKIE_SECURE": "0",
                # HAProxy is the one hop in front: rate limits and logs see the client's address.
                "PROXY_COUNT": "1",
                "WEB_CONCURRENCY": str(self.web_concurrency),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.overrides)
        return env

    # -- processes --------------------------------------------------------------------------

    def _python(self, *args: str) -> list[str]:
        return [str(BIN / "python"), *args]

    def _flask(self, *args: str) -> list[str]:
        return [str(BIN / "flask"), "--app", "wsgi", *args]

    def emulator(self, kind: str) -> Process:
        env = self.environment()
        tls = self.directory / "tls"
        port = self.ports.wechat if kind == "wechat" else self.ports.identity
        app = (
            f"{WECHAT_APPID}:{env['WECHAT_SECRET']}"
            if kind == "wechat"
            else f"{IDENTITY_APP_ID}:{env['IDENTITY_SERVICE_SECRET']}"
        )
        argv = self._python(
            str(ROOT / "scripts" / "prod_like.py"), "serve-emulator", kind, "--port", str(port),
            "--cert", str(tls / "server.pem"), "--key", str(tls / "server.key"), "--app", app,
        )  # fmt: skip
        return Process(f"{kind}-emulator", argv, env, self.directory)

    def metrics_dir(self, index: int) -> Path:
        """prometheus_client's multiprocess folder of "host" `index`: each web instance stands for
        a host, and the workers and schedulers run on the first, so one scrape of web-1 adds up
        the task outcomes and WeChat calls they count with its own requests."""
        return self.directory / "prometheus" / f"host-{index + 1}"

    def web(self, index: int) -> Process:
        env = self.environment()
        name = f"web-{index + 1}"
        env.update({"BIND": f"127.0.0.1:{self.ports.web[index]}"})
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir(index))
        argv = [
            str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"),
            "--pid", str(self.directory / f"{name}.gunicorn.pid"), "wsgi:app",
        ]  # fmt: skip
        return Process(name, argv, env, self.directory)

    def worker(self, index: int) -> Process:
        argv = [
            str(BIN / "dramatiq"), "app.jobs.worker", "--processes", "1", "--threads", "4",
        ]  # fmt: skip
        env = {**self.environment(), "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir(0))}
        return Process(f"worker-{index + 1}", argv, env, self.directory, BACKGROUND_NICENESS)

    def scheduler(self, index: int) -> Process:
        argv = self._flask("jobs", "scheduler")
        env = {**self.environment(), "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir(0))}
        return Process(f"scheduler-{index + 1}", argv, env, self.directory, BACKGROUND_NICENESS)

    def balancer(self) -> Process:
        argv = ["/usr/sbin/haproxy", "-db", "-f", str(self.haproxy_cfg)]
        return Process("haproxy", argv, dict(os.environ), self.directory)

    def redis_server(self) -> Process:
        assert self.ports.redis is not None
        data = self.directory / "redis"
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            shutil.which("redis-server") or "redis-server", "--port", str(self.ports.redis),
            "--bind", "127.0.0.1", "--dir", str(data), "--save", "", "--appendonly", "yes",
        ]  # fmt: skip
        return Process("redis", argv, dict(os.environ), self.directory)

    def processes(self) -> list[Process]:
        """Every process, in the order they start (and stop in reverse)."""
        parts: list[Process] = []
        if self.ports.redis is not None:
            parts.append(self.redis_server())
        parts += [self.emulator("wechat"), self.emulator("identity")]
        parts += [self.web(i) for i in range(len(self.ports.web))]
        parts += [self.worker(i) for i in range(self.workers)]
        parts += [self.scheduler(0), self.scheduler(1), self.balancer()]
        return parts

    # -- setup ------------------------------------------------------------------------------

    def _run(self, argv: list[str], env: Mapping[str, str], *, check: bool = True) -> None:
        with (self.directory / "setup.log").open("ab") as log:
            subprocess.run(  # noqa: S603  # nosec B603  # our own argv
                argv, env=dict(env), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=check
            )

    def _psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(  # noqa: S603  # nosec B603  # fixed argv
            ["psql", "-h", self.pg_host, "-U", self.pg_user, "-d", database, "-Atqc", sql],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def keys_fingerprint(self) -> str:
        """Names the secrets of `env_file` without revealing them."""
        secrets_ = load_or_create_secrets(self.env_file)
        text = "\n".join(f"{name}={secrets_[name]}" for name in sorted(secrets_))
        return "prod-like keys " + hashlib.sha256(text.encode()).hexdigest()[:16]

    def prepare_database(self) -> None:
        """Create (if missing), migrate and seed the database; every step is repeatable.

        The database belongs to the secrets it was seeded with (its comment names them): one
        seeded under another env file (another checkout, a fresh clone in CI) holds seal keys
        and personal data nobody here can open, so it is dropped and made again."""
        env = self.environment()
        fingerprint = self.keys_fingerprint()
        # '' when there is no such database, '-' when it has no comment.
        name = self.database
        owner = self._psql(
            f"SELECT coalesce(shobj_description(oid, 'pg_database'), '-') FROM pg_database WHERE datname = '{name}'"  # noqa: S608, E501  # nosec B608  # our own fixed name
        )
        if owner and owner != fingerprint:
            self._psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        created = subprocess.run(  # noqa: S603  # nosec B603  # fixed argv
            ["createdb", "-h", self.pg_host, "-U", self.pg_user, self.database],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode != 0 and "already exists" not in created.stderr:
            raise RuntimeError(f"createdb failed: {created.stderr.strip()}")
        self._run(self._flask("db", "upgrade"), env)
        # Demo data is a development act: production refuses it, so the seeding runs as
        # development against this database with the topology's own keys.
        seed_env = {**env, "APP_ENV": "development", "JOB_RUNNER": "manual"}
        self._run(self._flask("organisation", "load"), seed_env)
        self._run(self._flask("matters", "load"), seed_env)
        self._run(self._flask("demo", "seed"), seed_env)
        self._psql(f"COMMENT ON DATABASE \"{self.database}\" IS '{fingerprint}'")

    def write_haproxy_config(self) -> None:
        self.haproxy_cfg.write_text(
            haproxy_config(
                stats_socket=self.stats_socket,
                bind=f"127.0.0.1:{self.ports.balancer}",
                web_ports=self.ports.web,
            )
        )

    # -- start and stop ---------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Start everything (stopping a previous run first); return the state written."""
        self.stop()
        self.directory.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        processes = self.processes()
        by_name = {p.name: p for p in processes}
        if "redis" in by_name:
            by_name["redis"].start()
            _wait_for(lambda: _port_open(self.ports.redis or 0), 10, "redis")
        for kind in ("wechat", "identity"):
            by_name[f"{kind}-emulator"].start()
        _wait_for(lambda: _port_open(self.ports.wechat), 15, "WeChat emulator")
        _wait_for(lambda: _port_open(self.ports.identity), 15, "identity emulator")
        self.prepare_database()
        self.write_haproxy_config()
        # Fresh counters on a fresh start (nothing runs yet that writes to them).
        for index in range(len(self.ports.web)):
            shutil.rmtree(self.metrics_dir(index), ignore_errors=True)
            self.metrics_dir(index).mkdir(parents=True)
        for process in processes:
            if process.name.startswith(("web-", "worker-", "scheduler-", "haproxy")):
                process.start()
        for url in self.web_urls:
            _wait_for(
                lambda url=url: _http_status(f"{url}/readyz") == 200, READY_TIMEOUT_SECONDS, url
            )
        _wait_for(lambda: self.servers_up() == len(self.ports.web), 30, "the balancer's servers")
        _wait_for(lambda: _http_status(f"{self.base_url}/readyz") == 200, 30, "the balancer")
        state = {
            "base_url": self.base_url,
            "instances": self.web_urls,
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "metrics_token": env["METRICS_TOKEN"],
            "wechat": {
                "url": self.wechat_url,
                "appid": WECHAT_APPID,
                "ca": env["REQUESTS_CA_BUNDLE"],
            },
            "identity_url": self.identity_url,
            "haproxy_socket": str(self.stats_socket),
            "env_file": str(self.env_file),
            "pids": {p.name: p.pid for p in processes},
            "logs": {p.name: str(p.log_file) for p in processes},
        }
        self.state_file.write_text(json.dumps(state, indent=2))
        return state

    def stop(self) -> None:
        """Stop every process of the topology (SIGTERM, then SIGKILL after a timeout)."""
        for process in reversed(self.processes_on_disk()):
            process.stop()
        self.state_file.unlink(missing_ok=True)

    def processes_on_disk(self) -> list[Process]:
        """The processes whose pid files are in the directory, in start order."""
        if not self.directory.exists():
            return []
        order = [
            "redis",
            "wechat-emulator",
            "identity-emulator",
            "web",
            "worker",
            "scheduler",
            "haproxy",
        ]
        found = [
            Process(path.stem, [], {}, self.directory)
            for path in self.directory.glob("*.pid")
            if path.stem.count(".") == 0
        ]
        return sorted(
            found, key=lambda p: next(i for i, n in enumerate(order) if p.name.startswith(n))
        )

    # -- the balancer's runtime API ---------------------------------------------------------

    def haproxy(self, command: str) -> str:
        """One command to HAProxy's runtime API; its answer."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.stats_socket))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_states(self) -> dict[str, dict[str, str]]:
        """The backend's servers: status (UP, DOWN, MAINT, DRAIN...) and current sessions."""
        lines = self.haproxy("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {
            row["svname"]: row
            for row in rows
            if row.get("pxname") == "app" and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def servers_up(self) -> int:
        return sum(1 for row in self.server_states().values() if row["status"] == "UP")

    # -- restarts ---------------------------------------------------------------------------

    def restart_web(self, index: int, *, drain: bool = True) -> None:
        """A rolling restart of one instance: drain it, SIGTERM, start it, put it back."""
        name = f"web{index + 1}"
        process = self.web(index)
        if drain:
            self.haproxy(f"set server app/{name} state drain")
            _wait_for(lambda: self.server_states()[name]["scur"] == "0", 30, f"{name} drained")
            self.haproxy(f"set server app/{name} state maint")
        process.stop()
        # The folder is kept: the workers and schedulers write to the first one, and counters
        # of stopped processes are still counted (a restart is not a reset to zero).
        process.start()
        url = self.web_urls[index]
        _wait_for(lambda: _http_status(f"{url}/readyz") == 200, READY_TIMEOUT_SECONDS, url)
        if drain:
            self.haproxy(f"set server app/{name} state ready")
        _wait_for(lambda: self.server_states()[name]["status"] == "UP", 30, f"{name} UP")

    def reload_web(self, index: int) -> None:
        """SIGHUP to one instance's gunicorn master: new workers, then the old ones finish."""
        pid = self.web(index).pid
        if pid is None:
            raise RuntimeError(f"web-{index + 1} is not running")
        os.kill(pid, signal.SIGHUP)

    def scheduler_leader(self) -> str | None:
        """The lease holder (host:pid:nonce) of the scheduler leading now, if any."""
        from redis import Redis

        namespace = self.environment()["DRAMATIQ_NAMESPACE"]
        held = Redis.from_url(self.redis_url).get(f"{namespace}:scheduler:lease")
        if isinstance(held, bytes):
            return held.decode()
        return str(held) if held else None

    def restart_worker(self, index: int = 0, *, kill: bool = False) -> None:
        """Stop one Dramatiq worker (SIGKILL with kill=True: a crash) and start it again."""
        process = self.worker(index)
        process.stop(kill=kill)
        process.start()

    def restart_scheduler(self, index: int = 0, *, kill: bool = False) -> None:
        process = self.scheduler(index)
        process.stop(kill=kill)
        process.start()

    def restart_redis(self) -> None:
        """Stop the private redis-server and start it again (its append-only file kept)."""
        if self.ports.redis is None:
            raise RuntimeError("the machine's Redis is never restarted: PRODLIKE_PRIVATE_REDIS=1")
        process = self.redis_server()
        process.stop()
        process.start()
        _wait_for(lambda: _port_open(self.ports.redis or 0), 10, "redis")


def stray_processes(directory: Path = STATE_DIR) -> list[str]:
    """Processes still running for the topology in `directory` (for checks after a stop).

    Each names the directory in its command line (emulators, HAProxy, redis-server) or in
    its environment (app processes: REQUESTS_CA_BUNDLE); another topology's never match.
    """
    needle = (str(directory) + "/").encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if (needle in cmdline or needle in environ) and _alive(int(entry.name)):
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name} {command}")
    return found


def start(**options: Any) -> dict[str, Any]:
    """Start the topology; return its state (what state.json holds)."""
    return Topology(**options).start()


def stop(**options: Any) -> None:
    """Stop the topology; nothing happens if it is not running."""
    Topology(**options).stop()


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/prod_like.py", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("start", help="start the whole topology, return when ready")
    commands.add_parser("stop", help="stop it cleanly (idempotent)")
    commands.add_parser("status", help="print state.json and the balancer's servers")
    emulator = commands.add_parser("serve-emulator", help="(internal) one emulator over TLS")
    emulator.add_argument("kind", choices=["wechat", "identity"])
    emulator.add_argument("--port", type=int, required=True)
    emulator.add_argument("--cert", required=True)
    emulator.add_argument("--key", required=True)
    emulator.add_argument("--app", action="append", default=[])
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.command == "serve-emulator":
        serve_emulator(args.kind, args.port, args.cert, args.key, args.app)
        return 0
    topology = Topology()
    if args.command == "start":
        try:
            state = topology.start()
        except Exception:
            print(f"prod-like failed to start; logs in {topology.directory}", file=sys.stderr)
            topology.stop()
            raise
        print(f"prod-like ready at {state['base_url']} (state: {topology.state_file})")
    elif args.command == "stop":
        topology.stop()
        print("prod-like stopped")
    else:
        if not topology.state_file.exists():
            print("prod-like is not running")
            return 1
        print(topology.state_file.read_text())
        for name, row in topology.server_states().items():
            print(f"{name}: {row['status']} ({row['scur']} sessions)")
        print(f"the scheduler leading: {topology.scheduler_leader() or 'none'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
