"""`make prod-like`'s env file: generated once, and still enough for production after an upgrade."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.prod_like import load_or_create_secrets
from wechat.templates import DEFAULT_TEMPLATES


def test_a_file_from_before_a_new_kind_of_message_still_names_a_template_for_every_kind(
    tmp_path: Path,
) -> None:
    env = tmp_path / "env"
    first = load_or_create_secrets(env)
    older = dict(json.loads(first["WECHAT_TEMPLATES"]))
    older.pop("appointment_cancelled")
    older["queue_called"] = "tmpl-registered-by-hand"
    text = env.read_text(encoding="utf-8").splitlines()
    text = [
        f"WECHAT_TEMPLATES={json.dumps(json.dumps(older))}"
        if line.startswith("WECHAT_TEMPLATES=")
        else line
        for line in text
    ]
    env.write_text("\n".join(text) + "\n", encoding="utf-8")

    again = load_or_create_secrets(env)

    ids = json.loads(again["WECHAT_TEMPLATES"])
    assert set(ids) == set(DEFAULT_TEMPLATES)
    assert ids["queue_called"] == "tmpl-registered-by-hand"
    assert ids["appointment_cancelled"] == "tmpl-appointment_cancelled"
    assert again["SECRET_KEY"] == first["SECRET_KEY"]
