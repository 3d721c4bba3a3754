"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py wsgi:app`.

Every value can be overridden on the command line or with GUNICORN_CMD_ARGS.
"""

import multiprocessing
import os

from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger
from gunicorn.workers.base import Worker

bind = os.environ.get("BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# Threads, not only processes: hall screens hold Server-Sent Events streams for hours, and a
# sync worker would be taken whole by one screen.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 30
# On SIGTERM (stop) or SIGHUP (reload: new workers with the new code and config, then the old
# ones stop) a worker gets this long to finish the requests it holds before it is killed. An
# SSE stream never finishes by itself: it is cut at the end, and the screen reconnects.
graceful_timeout = 30
keepalive = 5
# The app answers a URL over 4 KB itself, with the API's JSON error (414); gunicorn's own
# limit (an HTML page) is set above it, at its maximum.
limit_request_line = 8190
# The app logs every request itself, as JSON with its request id (app/logs.py); gunicorn's
# own access line would repeat it in another format. GUNICORN_ACCESS_LOG=- brings it back.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None


class AccessLineOnlyWhenAsked(Logger):
    """gunicorn's logger, writing access lines only when `accesslog` names a destination.

    gunicorn counts access logging as on whenever a logging config is given (ours below, for its
    own messages as JSON), and then builds and writes an access line for every request.
    """

    @property
    def access_log_enabled(self) -> bool:
        return bool(self.cfg.accesslog)


logger_class = AccessLineOnlyWhenAsked
errorlog = "-"
# gunicorn's own messages (boot, worker exits, reloads) as JSON lines like the app's.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        }
    },
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
}


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


def post_worker_init(worker: Worker) -> None:
    """Before a worker serves: the seal caches filled (the first sealed document of a process
    built them: ~0.3 s added to whichever applicant's 秒批 came first after a start or a
    reload), then frozen with the rest of the startup heap (see app/runtime.py)."""
    from app.runtime import freeze_startup_heap, warm_caches

    warm_caches(worker.wsgi)
    freeze_startup_heap()
