"""Entry point of the Dramatiq workers: `dramatiq app.jobs.worker` (needs REDIS_URL).

Importing this module builds the app from the environment ($APP_ENV and friends) with the
Dramatiq runner, which declares the actors on its Redis broker and makes that broker the
global one the `dramatiq` command picks up. Actors use the app's engine and WeChat client
directly; they need no request or app context.
"""

from __future__ import annotations

from app import create_app
from app.policies.jobs import declare_dramatiq_actor
from app.runtime import freeze_startup_heap

app = create_app(JOB_RUNNER="dramatiq")
broker = app.extensions["jobs"].broker
declare_dramatiq_actor(app)  # the policy push drain (queue "policy_push")
freeze_startup_heap()
