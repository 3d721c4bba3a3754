"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py wsgi:app`.

Every value can be overridden on the command line or with GUNICORN_CMD_ARGS.
"""

import multiprocessing
import os

from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker

bind = os.environ.get("BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# Threads, not only processes: hall screens hold Server-Sent Events streams for hours, and a
# sync worker would be taken whole by one screen.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 30
graceful_timeout = 30
keepalive = 5
# The app answers a URL over 4 KB itself, with the API's JSON error (414); gunicorn's own
# limit (an HTML page) is set above it, at its maximum.
limit_request_line = 8190
accesslog = "-"
errorlog = "-"


def child_exit(server: Arbiter, worker: Worker) -> None:
    """A worker exited: drop its live gauges from the metrics every worker shares.

    With PROMETHEUS_MULTIPROC_DIR set (the launcher sets it, to a directory it empties before
    starting gunicorn), each worker writes its metrics to files there and /metrics merges them
    (app/observability/exposition.py); a dead worker's counters stay counted, as Prometheus
    expects of counters.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
