"""One shape for every list the API returns: a page envelope, numbered pages, a maximum size.

    GET /api/v1/...?page=2&page_size=20
    {"items": [...], "total": 57, "page": 2, "page_size": 20}

`page` starts at 1; `page_size` defaults to 20 and is at most 100. A page past the end is an
empty `items` with the right `total`. Lists with a figure of their own (unread notifications,
a hall day's counts) carry it beside these four keys.

A view declares `@blp.arguments(PageArgs, location="query")` (or a query schema derived from
it) and `@blp.response(200, page_schema(ItemOut))`, and returns `page_of(items, args)` for a
list it holds, or `page_from(rows, total, args)` when its service fetched one page in SQL
(`PageRequest.offset` / `.limit`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, fields, validate

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Far beyond any list here; bounded so the offset stays a small number for the database.
MAX_PAGE = 100_000


class PageArgs(Schema):
    page = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={"description": "页码，从 1 开始"},
    )
    page_size = fields.Integer(
        load_default=DEFAULT_PAGE_SIZE,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"每页条数，默认 {DEFAULT_PAGE_SIZE}，最多 {MAX_PAGE_SIZE}"},
    )


@dataclass(frozen=True)
class PageRequest:
    page: int
    size: int

    @classmethod
    def of(cls, args: Mapping[str, Any]) -> PageRequest:
        return cls(int(args["page"]), int(args["page_size"]))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @property
    def limit(self) -> int:
        return self.size


_schemas: dict[tuple[type[Schema], tuple[str, ...]], type[Schema]] = {}


def page_schema(item: type[Schema], **extra: fields.Field) -> type[Schema]:
    """The page envelope of `item` (`<Item>Page` in the OpenAPI document)."""
    key = (item, tuple(sorted(extra)))
    found = _schemas.get(key)
    if found is None:
        name = item.__name__.removesuffix("Out").removesuffix("Schema") + "Page"
        found = _schemas[key] = Schema.from_dict(
            {
                "items": fields.List(fields.Nested(item), required=True),
                "total": fields.Integer(required=True, metadata={"description": "总条数"}),
                "page": fields.Integer(required=True),
                "page_size": fields.Integer(required=True),
                **extra,
            },
            name=name,
        )
    return found


def page_from(
    items: Sequence[Any], total: int, args: Mapping[str, Any], **extra: Any
) -> dict[str, Any]:
    """The envelope of one page the caller fetched itself."""
    request = PageRequest.of(args)
    return {
        "items": items,
        "total": total,
        "page": request.page,
        "page_size": request.size,
        **extra,
    }


def page_of(items: Sequence[Any], args: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The requested page of a whole list (for lists bounded by nature: a hall's windows...)."""
    request = PageRequest.of(args)
    window = items[request.offset : request.offset + request.limit]
    return page_from(window, len(items), args, **extra)


def whole_list(items: Sequence[Any], **extra: Any) -> dict[str, Any]:
    """A whole short list in the envelope (the answer of an action, not a query)."""
    return {"items": items, "total": len(items), "page": 1, "page_size": len(items), **extra}
