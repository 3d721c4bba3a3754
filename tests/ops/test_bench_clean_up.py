"""A benchmark stopped with SIGTERM (`kill`, a CI step's timeout) cleans up as after Ctrl-C.

Python's default SIGTERM ends the process without running `finally`, so a killed bench left its
gunicorn and Dramatiq children serving and its `bench_*` database behind.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BENCH = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {bench!r})
    from servers import clean_up_on_sigterm
    clean_up_on_sigterm()
    try:
        print("running", flush=True)
        time.sleep(60)
    finally:
        open({marker!r}, "w").write("cleaned up")
    """
)


def test_a_bench_stopped_with_sigterm_runs_its_clean_up(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    bench = subprocess.Popen(
        [sys.executable, "-c", BENCH.format(bench=str(ROOT / "bench"), marker=str(marker))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert bench.stdout is not None and bench.stdout.readline().strip() == "running"
        bench.send_signal(signal.SIGTERM)
        bench.wait(timeout=30)
    finally:
        bench.kill()
    assert marker.read_text() == "cleaned up"
    assert bench.returncode == 128 + signal.SIGTERM
