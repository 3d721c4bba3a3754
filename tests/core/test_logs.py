"""Logs are JSON lines with the request id, and never carry personal data."""

from __future__ import annotations

import io
import json
import logging

from flask import Flask

from app.logs import RedactPersonalData, RequestContext, redact


def test_redact_masks_id_numbers_phones_and_accounts() -> None:
    text = "id 44011319900101123X phone 13812345678 card 6222021234567890123 ticket A012"
    cleaned = redact(text)
    assert "44011319900101123X" not in cleaned
    assert "13812345678" not in cleaned
    assert "6222021234567890123" not in cleaned
    assert "A012" in cleaned


def test_log_lines_are_json_with_request_id_and_redacted(app: Flask) -> None:
    from pythonjsonlogger.json import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("%(levelname)s %(message)s %(request_id)s"))
    handler.addFilter(RequestContext())
    handler.addFilter(RedactPersonalData())
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with app.test_request_context("/"):
            from flask import g

            g.request_id = "rid-123456789"
            logger.info("user bound phone %s", "13912345678")
    finally:
        logger.removeHandler(handler)
    record = json.loads(stream.getvalue())
    assert record["request_id"] == "rid-123456789"
    assert "13912345678" not in stream.getvalue()


def test_extra_fields_are_redacted_in_the_lines_written(app: Flask) -> None:
    """What the production handler writes: the message and every `extra` field masked."""
    from app.logs import json_handler

    stream = io.StringIO()
    logger = logging.getLogger("test.redaction.extra")
    logger.addHandler(json_handler(stream))
    logger.setLevel(logging.INFO)
    try:
        logger.info(
            "bound %s",
            "13912345678",
            extra={"phone": "13812345678", "note": "id 44011319900101123X", "path": "/q/A012"},
        )
    finally:
        logger.handlers.clear()
    written = stream.getvalue()
    line = json.loads(written)
    for personal in ("13912345678", "13812345678", "44011319900101123X"):
        assert personal not in written
    assert line["phone"] == "[REDACTED]" and line["note"] == "id [REDACTED]"
    assert line["path"] == "/q/A012" and line["message"] == "bound [REDACTED]"


def test_request_ids_are_logged_as_sent_back(app: Flask, client) -> None:  # type: ignore[no-untyped-def]
    # A uuid's hex with a 12+ digit run used to come out as "67ce...[REDACTED]" in the log.
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "request", None, None)
    record.request_id = "67ce123456789012345abcdef0123456"
    RedactPersonalData().filter(record)
    assert record.request_id == "67ce123456789012345abcdef0123456"

    kept = client.get("/api/v1/halls", headers={"X-Request-ID": "req-7f3a9c2e-0001"})
    assert kept.headers["X-Request-ID"] == "req-7f3a9c2e-0001"
    smuggled = client.get("/api/v1/halls", headers={"X-Request-ID": "id-13812345678-x"})
    assert "13812345678" not in smuggled.headers["X-Request-ID"]
