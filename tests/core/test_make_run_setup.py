"""`make run`'s set-up commands, in the order scripts/run_local.sh runs them, on a fresh
SQLite database: each must succeed (a command that needs another's data must come after it)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from app import create_app
from config import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "run_local.sh"


def _setup_commands() -> list[list[str]]:
    """The `flask --app wsgi ...` commands of the script before it starts the server."""
    commands = []
    for line in SCRIPT.read_text(encoding="utf-8").splitlines():
        matched = re.match(r"\$BIN/flask --app wsgi (.+)$", line.strip())
        if matched:
            args = shlex.split(matched.group(1))
            if args[0] == "run":
                break
            commands.append(args)
    return commands


def test_make_runs_setup_commands_succeed_in_their_order(tmp_path: Path, monkeypatch) -> None:
    commands = _setup_commands()
    assert {c[0] for c in commands} >= {"db", "organisation", "matters", "demo"}
    # The seed writes printable codes under the project's var/: keep them in the temp dir.
    monkeypatch.setattr("app.demo.PROJECT_ROOT", tmp_path)
    app = create_app(
        "testing",
        DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}",
        IDENTITY_SERVICE_BASE="checksum",
        CITY_CODE_SERVICE_BASE="disabled",
        WECHAT_API_BASE="http://127.0.0.1:9",  # the seed's login hint is skipped, not fatal
        REDIS_URL="",
        JOB_RUNNER="manual",
    )
    runner = app.test_cli_runner()
    printed = ""
    for args in commands:
        result = runner.invoke(args=args)
        assert result.exit_code == 0, (args, result.output, result.exception)
        printed += result.output
    assert "9 newly published" in printed  # four matters, two versions each; the advert three
