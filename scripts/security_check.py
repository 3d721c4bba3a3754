"""`make security`: bandit over the code, pip-audit over the locked requirements.

Exit status 0 when bandit finds nothing (justified findings are marked `# nosec` in the code
and listed in security/FINDINGS.md) and pip-audit finds no known vulnerability. pip-audit asks
a vulnerability service over the network (PyPI's JSON API, then OSV). When neither answers,
that is said plainly and the audit fails, unless SECURITY_OFFLINE_OK=1 (CI on a machine
without the service): then it exits 0 after saying nothing was audited. A vulnerability found
always fails.

"Did not answer" is read from pip-audit itself, never guessed: either its run ended on a
transport error of `requests` (no route, DNS, proxy, TLS, timeout), or it skipped packages
with its "not found on PyPI" reason, which is what a mirror that serves the index but not the
per-release JSON makes it say. Every package of the lock comes from PyPI, so that reason never
means a private package here.

    python scripts/security_check.py [--only bandit|pip-audit] [--requirements FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CODE = ("app", "blueprints", "wechat", "seals", "verification", "config")
REQUIREMENTS = ROOT / "requirements.txt"
# Asked in this order; the first that answers decides.
SERVICES = ("pypi", "osv")
TIMEOUT_SECONDS = 15

# The errors pip-audit's traceback ends with when the service cannot be reached or fails
# (its own ConnectionError for a connect timeout, requests' HTTPError for a 5xx), and the
# transport errors of requests it lets through.
TRANSPORT_ERRORS = (
    "pip_audit._service.interface.ConnectionError",
    "requests.exceptions.HTTPError",
    "requests.exceptions.ConnectionError",
    "requests.exceptions.ProxyError",
    "requests.exceptions.ConnectTimeout",
    "requests.exceptions.ReadTimeout",
    "requests.exceptions.SSLError",
    "NameResolutionError",
    "Max retries exceeded",
)
# pip-audit's skip reason for a package the service had no answer for.
UNANSWERED_SKIP = "not found on PyPI and could not be audited"

CLEAN, VULNERABLE, UNANSWERED, ERROR = "clean", "vulnerable", "unanswered", "error"


@dataclass
class Audit:
    """What one pip-audit run showed: an outcome and the lines that say why."""

    outcome: str
    lines: list[str] = field(default_factory=list)


def classify(returncode: int, report: str | None, stderr: str) -> Audit:
    """Read one pip-audit run: its exit status, its JSON report (None if it wrote none) and
    its standard error."""
    if report:
        dependencies = json.loads(report).get("dependencies", [])
        found = [
            f"{dep['name']} {dep.get('version', '?')}: {vuln['id']} "
            f"(fixed in {', '.join(vuln.get('fix_versions') or []) or 'no release yet'})"
            for dep in dependencies
            for vuln in dep.get("vulns", [])
        ]
        if found:
            return Audit(VULNERABLE, found)
        skipped = [dep for dep in dependencies if "skip_reason" in dep]
        unanswered = [dep["name"] for dep in skipped if UNANSWERED_SKIP in dep["skip_reason"]]
        if unanswered:
            shown = ", ".join(unanswered[:5]) + (", ..." if len(unanswered) > 5 else "")
            return Audit(
                UNANSWERED,
                [f"no answer for {len(unanswered)} of {len(dependencies)} packages ({shown})"],
            )
        if skipped:
            return Audit(ERROR, [f"{dep['name']}: {dep['skip_reason']}" for dep in skipped])
        if returncode == 0:
            return Audit(CLEAN, [f"{len(dependencies)} packages, no known vulnerabilities"])
    last = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
    if any(marker in stderr for marker in TRANSPORT_ERRORS):
        return Audit(UNANSWERED, last)
    return Audit(ERROR, [f"pip-audit exited {returncode}", *stderr.strip().splitlines()[-15:]])


def run_pip_audit(requirements: Path, service: str) -> Audit:
    """One pip-audit run of the locked file against `service`, nothing installed."""
    with tempfile.TemporaryDirectory() as scratch:
        report_path = Path(scratch) / "report.json"
        completed = subprocess.run(  # noqa: S603 (fixed arguments, our own tools)
            [
                str(BIN / "pip-audit"),
                "--requirement",
                str(requirements),
                "--require-hashes",
                "--disable-pip",
                "--vulnerability-service",
                service,
                "--timeout",
                str(TIMEOUT_SECONDS),
                "--progress-spinner",
                "off",
                "--format",
                "json",
                "--output",
                str(report_path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        report = report_path.read_text() if report_path.exists() else None
    return classify(completed.returncode, report, completed.stderr)


def run_bandit(paths: tuple[str, ...] = CODE) -> bool:
    """Bandit with pyproject.toml's settings; prints its findings; True if there are none."""
    completed = subprocess.run(  # noqa: S603 (fixed arguments, our own tools)
        [str(BIN / "bandit"), "-c", str(ROOT / "pyproject.toml"), "-q", "-r", *paths],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if completed.returncode == 0:
        print(f"bandit: no findings in {' '.join(paths)} (justified ones: security/FINDINGS.md)")
        return True
    # Its log warnings (a nosec on a line that spans several statements) only on failure.
    print(completed.stdout + completed.stderr)
    print("bandit: FINDINGS above; fix each or justify it in security/FINDINGS.md with # nosec")
    return False


def audit_dependencies(requirements: Path, offline_ok: bool) -> bool:
    """pip-audit against each service until one answers; True if the result is acceptable."""
    unanswered: list[str] = []
    for service in SERVICES:
        audit = run_pip_audit(requirements, service)
        if audit.outcome == CLEAN:
            print(f"pip-audit ({service}): {audit.lines[0]} in {requirements.name}")
            return True
        if audit.outcome == VULNERABLE:
            print(f"pip-audit ({service}): KNOWN VULNERABILITIES in {requirements.name}:")
            for line in audit.lines:
                print(f"  {line}")
            return False
        if audit.outcome == ERROR:
            print(f"pip-audit ({service}) failed:")
            for line in audit.lines:
                print(f"  {line}")
            return False
        unanswered.append(f"{service}: {audit.lines[0]}")
    print("pip-audit: the vulnerability service did not answer; NOTHING WAS AUDITED")
    for line in unanswered:
        print(f"  {line}")
    if offline_ok:
        print("pip-audit: accepted because SECURITY_OFFLINE_OK=1 (run `make security` online)")
        return True
    print("pip-audit: failing; set SECURITY_OFFLINE_OK=1 to accept an unreachable service")
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("bandit", "pip-audit"))
    parser.add_argument("--requirements", type=Path, default=REQUIREMENTS)
    args = parser.parse_args(argv)
    offline_ok = os.environ.get("SECURITY_OFFLINE_OK") == "1"
    ok = True
    if args.only in (None, "bandit"):
        ok = run_bandit() and ok
    if args.only in (None, "pip-audit"):
        ok = audit_dependencies(args.requirements, offline_ok) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
