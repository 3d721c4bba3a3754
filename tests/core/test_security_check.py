"""Issue 14, security: `make security` (scripts/security_check.py) fails on a bandit finding and
on a known vulnerability, and tells "the service did not answer" from pip-audit's own words,
accepting it only under SECURITY_OFFLINE_OK=1."""

from __future__ import annotations

import importlib.util
import json
import stat
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "security_check", ROOT / "scripts/security_check.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


check = _load()

# pip-audit's JSON report (its `--format json`), as it writes one for each outcome.
VULNERABLE_REPORT = {
    "dependencies": [
        {"name": "flask", "version": "3.1.3", "vulns": []},
        {
            "name": "jinja2",
            "version": "2.10",
            "vulns": [{"id": "PYSEC-2019-217", "fix_versions": ["2.10.1"]}],
        },
    ],
    "fixes": [],
}
CLEAN_REPORT = {"dependencies": [{"name": "flask", "version": "3.1.3", "vulns": []}], "fixes": []}
MIRROR_REPORT = {
    "dependencies": [
        {
            "name": "flask",
            "skip_reason": "Dependency not found on PyPI and could not be audited: flask (3.1.3)",
        }
    ],
    "fixes": [],
}
PROXY_TRACEBACK = """Traceback (most recent call last):
  File ".../requests/adapters.py", line 671, in send
requests.exceptions.ProxyError: HTTPSConnectionPool(host='pypi.org', port=443): Max retries \
exceeded with url: /pypi/flask/3.1.3/json (Caused by ProxyError('Unable to connect to proxy'))
"""


@pytest.mark.parametrize(
    ("returncode", "report", "stderr", "outcome"),
    [
        (1, VULNERABLE_REPORT, "", check.VULNERABLE),
        (0, CLEAN_REPORT, "", check.CLEAN),
        (0, MIRROR_REPORT, "", check.UNANSWERED),
        (1, None, PROXY_TRACEBACK, check.UNANSWERED),
        (1, None, "ERROR: requirement flask==3.1.3 has no hash", check.ERROR),
        (0, {"dependencies": [{"name": "x", "skip_reason": "editable"}]}, "", check.ERROR),
    ],
    ids=[
        "vulnerable",
        "clean",
        "mirror-without-release-json",
        "proxy-down",
        "bad-lock",
        "other-skip",
    ],
)
def test_pip_audit_runs_are_read_from_what_pip_audit_says(
    returncode: int, report: dict[str, Any] | None, stderr: str, outcome: str
) -> None:
    audit = check.classify(returncode, json.dumps(report) if report else None, stderr)

    assert audit.outcome == outcome
    if outcome == check.VULNERABLE:
        assert audit.lines == ["jinja2 2.10: PYSEC-2019-217 (fixed in 2.10.1)"]


def _stub_pip_audit(tmp_path: Path, report: dict[str, Any], returncode: int) -> Path:
    """A `pip-audit` that writes `report` where it is told to, as the real one would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pip-audit"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "args = sys.argv[1:]\n"
        f"open(args[args.index('--output') + 1], 'w').write({json.dumps(report)!r})\n"
        f"sys.exit({returncode})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir


@pytest.mark.parametrize("offline_ok", ["1", ""])
def test_a_known_vulnerability_fails_even_when_offline_is_accepted(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    offline_ok: str,
) -> None:
    monkeypatch.setattr(check, "BIN", _stub_pip_audit(tmp_path, VULNERABLE_REPORT, 1))
    monkeypatch.setenv("SECURITY_OFFLINE_OK", offline_ok)

    assert check.main(["--only", "pip-audit"]) == 1
    assert "PYSEC-2019-217" in capsys.readouterr().out


def test_an_unanswered_service_fails_unless_offline_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(check, "BIN", _stub_pip_audit(tmp_path, MIRROR_REPORT, 0))

    monkeypatch.delenv("SECURITY_OFFLINE_OK", raising=False)
    assert check.main(["--only", "pip-audit"]) == 1
    monkeypatch.setenv("SECURITY_OFFLINE_OK", "1")
    assert check.main(["--only", "pip-audit"]) == 0
    assert "NOTHING WAS AUDITED" in capsys.readouterr().out


def test_the_real_pip_audit_behind_a_dead_proxy_is_unanswered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    audit = check.run_pip_audit(ROOT / "requirements.txt", "pypi")

    assert audit.outcome == check.UNANSWERED, audit.lines


def test_bandit_fails_on_a_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unsafe = tmp_path / "unsafe.py"
    unsafe.write_text(
        "import subprocess\n\n\ndef run(cmd: str) -> None:\n    subprocess.call(cmd, shell=True)\n"
    )

    assert check.run_bandit((str(unsafe),)) is False
    assert "B602" in capsys.readouterr().out
