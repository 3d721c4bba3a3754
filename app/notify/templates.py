"""Which WeChat template id each kind of notification uses.

Domains name a notification by a stable key ("queue_called"); the template id is what the
mini-program's admin console assigned, different per app. The mapping is the setting
`WECHAT_TEMPLATES` (JSON), either `{"queue_called": "<template id>", ...}` or
`{"queue_called": {"id": "<template id>", "long_term": true, "title": "..."}, ...}`; without
it the local emulator's templates are used, whose ids equal their keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from app.notify.errors import UnknownTemplateKey
from wechat.templates import DEFAULT_TEMPLATES


@dataclass(frozen=True)
class Template:
    key: str
    id: str
    title: str = ""
    # Long-term subscriptions (public services) need no per-message grant from the user.
    long_term: bool = False


class TemplateCatalog:
    """The templates this app sends, by key and by WeChat template id."""

    def __init__(self, templates: list[Template]) -> None:
        self._by_key = {t.key: t for t in templates}
        self._by_id = {t.id: t for t in templates}

    def __iter__(self) -> Iterator[Template]:
        return iter(self._by_key.values())

    def by_key(self, key: str) -> Template:
        """The template for `key`; an unknown key is a programming error."""
        try:
            return self._by_key[key]
        except KeyError:
            raise UnknownTemplateKey(key) from None

    def by_id(self, template_id: str) -> Template | None:
        return self._by_id.get(template_id)

    @classmethod
    def defaults(cls) -> TemplateCatalog:
        """The emulator's templates: key and id are the same string."""
        return cls(
            [
                Template(key=spec.id, id=spec.id, title=spec.title, long_term=spec.long_term)
                for spec in DEFAULT_TEMPLATES.values()
            ]
        )

    @classmethod
    def from_setting(cls, raw: str | Mapping[str, Any] | None) -> TemplateCatalog:
        """Parse the `WECHAT_TEMPLATES` setting (JSON text or a mapping); empty → defaults."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return cls.defaults()
        mapping = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(mapping, Mapping):
            raise ValueError("WECHAT_TEMPLATES must be a JSON object of key -> template id")
        known = {spec.id: spec for spec in DEFAULT_TEMPLATES.values()}
        templates = []
        for key, value in mapping.items():
            spec = value if isinstance(value, Mapping) else {"id": value}
            if not isinstance(spec.get("id"), str) or not spec["id"]:
                raise ValueError(f"WECHAT_TEMPLATES[{key!r}] needs a template id")
            default_title = known[key].title if key in known else ""
            templates.append(
                Template(
                    key=str(key),
                    id=spec["id"],
                    title=str(spec.get("title", default_title)),
                    long_term=bool(spec.get("long_term", False)),
                )
            )
        return cls(templates)


def init_app(app: Flask) -> TemplateCatalog:
    """Parse the app's `WECHAT_TEMPLATES` once and keep the catalog on the app."""
    catalog = TemplateCatalog.from_setting(app.config.get("WECHAT_TEMPLATES"))
    app.extensions["notify_templates"] = catalog
    return catalog


def get_catalog() -> TemplateCatalog:
    """The current app's catalog. Code that runs outside an app (worker threads) is handed
    the catalog by whoever started it, from `app.extensions["notify_templates"]`."""
    catalog: TemplateCatalog = current_app.extensions["notify_templates"]
    return catalog
