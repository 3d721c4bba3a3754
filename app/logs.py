"""JSON logs, one line per record, each carrying the request id.

A web request's id (X-Request-ID) follows the jobs it enqueues: the Dramatiq middleware
(`app.jobs.dramatiq_broker.RequestIdPropagation`) puts `current_request_id()` in the message's
options, and binds it (`bind_job_request_id`) while a worker runs the message, so the worker's
lines carry the same `request_id` as the request's.

Personal data must never reach a log: code logs ids, not names or numbers, and `RedactPersonalData`
masks anything that still looks like an ID number, a phone number or a bank account.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from typing import IO, Any, TypeGuard

from flask import Flask, Response, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

# 18-digit resident ID (last may be X), mainland mobile numbers, long digit runs (accounts).
_PERSONAL_PATTERNS = [
    re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)"),
    re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)"),
    re.compile(r"(?<!\d)\d{12,19}(?!\d)"),
]


# Each pattern needs eleven digits in a row: text without them (nearly every line) is
# returned after one scan instead of three.
_ELEVEN_DIGITS = re.compile(r"\d{11}")


def redact(text: str) -> str:
    """Mask anything in `text` that looks like personal data."""
    if _ELEVEN_DIGITS.search(text) is None:
        return text
    for pattern in _PERSONAL_PATTERNS:
        text = pattern.sub("[REDACTED]", text)
    return text


# The request id must match X-Request-ID in the response: it is never rewritten (a uuid's hex
# often holds a run of 12+ digits), and an incoming one that looks like personal data is
# replaced on arrival instead (`_assign_request_id`).
_NOT_REDACTED = {"msg", "name", "levelname", "pathname", "request_id"}
# What every record carries of its own (file, function, thread and process names...): the
# JSON formatter writes those only when its format names them, and they name code, never a
# person. What a line says of a person is in its message and in the `extra` fields.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class RedactPersonalData(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        fields = record.__dict__
        for key in fields.keys() - _RECORD_ATTRIBUTES - _NOT_REDACTED:
            value = fields[key]
            if isinstance(value, str):
                fields[key] = redact(value)
        return True


# The request id of the job this thread is running (a worker thread runs one at a time).
_job_request_id: ContextVar[str | None] = ContextVar("job_request_id", default=None)


def is_valid_request_id(value: object) -> TypeGuard[str]:
    """A request id as it may be logged and passed on: short, plain, nothing personal."""
    return (
        isinstance(value, str)
        and _VALID_REQUEST_ID.match(value) is not None
        and redact(value) == value
    )


def current_request_id() -> str | None:
    """The id of the web request being served, else of the request that enqueued this job."""
    if has_request_context():
        request_id: str | None = g.get("request_id")
        if request_id:
            return request_id
    return _job_request_id.get()


def bind_job_request_id(request_id: object) -> None:
    """This thread now runs a job enqueued by `request_id` (None or invalid: by no request)."""
    _job_request_id.set(request_id if is_valid_request_id(request_id) else None)


class RequestContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


def json_handler(stream: IO[str]) -> logging.Handler:
    """The handler of every process (web, Dramatiq worker, CLI): JSON lines with request ids."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(RequestContext())
    handler.addFilter(RedactPersonalData())
    return handler


def configure_logging(level: str) -> None:
    """Send every logger's records to stdout as JSON.

    A Dramatiq worker process builds the app too (app/jobs/worker.py), after Dramatiq pointed
    its stdout at the pipe to the parent process: its lines are the same JSON.
    """
    handler = json_handler(sys.stdout)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Werkzeug's own access log would print raw query strings; ours below is redacted.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Libraries that narrate their work at INFO (font subsetting for every PDF, Alembic's
    # plugin set-up on every command) would bury what an operator needs to read.
    for chatty in ("fontTools", "alembic.runtime.plugins"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


class ServerTiming:
    """WSGI middleware adding `Server-Timing: app;dur=<ms>`: the server's own time for the
    request, from the moment the WSGI server hands it over to the moment the response
    starts, so clients and benchmarks can tell it apart from network and queueing time."""

    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        started = time.perf_counter()

        def timed_start_response(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            elapsed_ms = (time.perf_counter() - started) * 1000
            headers.append(("Server-Timing", f"app;dur={elapsed_ms:.3f}"))
            return start_response(status, headers, *args)

        return self.wsgi_app(environ, timed_start_response)


def init_request_logging(app: Flask) -> None:
    """Give each request an id (kept from the caller when well-formed) and log it once."""
    access_log = logging.getLogger("yuhaoban.access")
    app.wsgi_app = ServerTiming(app.wsgi_app)  # type: ignore[method-assign]

    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if is_valid_request_id(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _log_request(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("request_started")
        duration_ms = round((time.perf_counter() - started) * 1000, 3) if started else None
        access_log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,  # the path only: query strings may carry codes
                "status": response.status_code,
                "duration_ms": duration_ms,
            },
        )
        return response
