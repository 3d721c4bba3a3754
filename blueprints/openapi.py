"""The OpenAPI document as the contract: the error shape the app really sends, on every error.

flask-smorest documents its own error payload (`code: int, status, message, errors`); this app
answers every 4xx/5xx with `{"code": "<CODE>", "message": "<中文>", "details": {...}}`
(blueprints/errors.py). `ContractApi` documents that shape for the default error response and
gives it to every error response a view declares by description only.
"""

from __future__ import annotations

from typing import Any

import flask_smorest
import marshmallow as ma
from apispec import BasePlugin
from flask import Flask
from flask_smorest import Api
from marshmallow import RAISE
from webargs.flaskparser import FlaskParser

ERROR_SCHEMA_NAME = "Error"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}


class ErrorSchema(ma.Schema):
    """The body of every error response."""

    code = ma.fields.String(
        required=True,
        metadata={"description": "机器可读的错误码，如 HALL_CLOSED", "example": "HALL_CLOSED"},
    )
    message = ma.fields.String(required=True, metadata={"description": "给用户看的中文说明"})
    details = ma.fields.Dict(
        required=True, metadata={"description": "附加信息（如字段错误 fields、冲突的号码 ticket）"}
    )


class ErrorResponses(BasePlugin):
    """Every documented error response without a body gets the error body; a schema class's
    `openapi_extra` (keywords marshmallow cannot state, e.g. minProperties) joins its
    component, and a field's `openapi_property` replaces its property."""

    def __init__(self, app: Flask | None = None) -> None:
        super().__init__()
        self._app = app

    def schema_helper(self, name: str, definition: dict[str, Any], **kwargs: Any) -> None:
        schema = kwargs.get("schema")
        extra = getattr(schema, "openapi_extra", None)
        if extra:
            definition.update(extra)
        # A field whose value is a language of its own (the policy criteria) states its JSON
        # Schema in `metadata["openapi_property"]`, replacing what marshmallow can say; a
        # callable gets the app, for what the deployment configures (its template ids).
        instance = schema() if isinstance(schema, type) else schema
        for field_name, field in getattr(instance, "fields", {}).items():
            replacement = field.metadata.get("openapi_property")
            if callable(replacement):
                replacement = replacement(self._app) if self._app is not None else None
            if replacement is not None:
                key = field.data_key or field_name
                definition.setdefault("properties", {})[key] = replacement

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        for operation in (operations or {}).values():
            for status, response in operation.get("responses", {}).items():
                if not isinstance(response, dict) or "content" in response:
                    continue
                if str(status).isdigit() and int(status) >= 400:
                    response["content"] = {"application/json": {"schema": ERROR_REF}}


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, reading arguments as the document states them: a field
    the schema does not name is an error in the query string too (webargs would drop it), so
    a misspelt filter is a 422 rather than an unfiltered list."""

    ARGUMENTS_PARSER = FlaskParser(unknown=RAISE)


class ContractApi(Api):
    ERROR_SCHEMA = ErrorSchema  # documented as components/schemas/Error

    def _init_spec(self, **kwargs: Any) -> None:
        plugin = ErrorResponses(getattr(self, "_app", None))  # init_app sets _app first
        kwargs["extra_plugins"] = [*kwargs.get("extra_plugins", ()), plugin]
        super()._init_spec(**kwargs)  # type: ignore[misc]


api = ContractApi()
