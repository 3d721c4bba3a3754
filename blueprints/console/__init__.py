"""The staff web console under /console: server-rendered pages for window clerks, hall
screens, reviewers, policy officers, hall managers and admins.

Pages call the same services in app/ as the API; each module holds one desk:

- `login`: password and scan login, logout, linking the WeChat account that scans
- `terminal`: the window terminal;  `screen`: the hall TV (display token, no staff login)
- `review`: the reviewer desk;  `policies`: the policy desk
- `dashboard`: the hall manager's day and the district view;  `admin`: halls, staff, seals
"""

from __future__ import annotations

from flask import Blueprint

blp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

# The shared request handling, then each desk's routes (each module registers on `blp`).
from blueprints.console import rendering  # noqa: E402

rendering.install(blp)

from blueprints.console import (  # noqa: E402,F401
    admin,
    dashboard,
    home,
    login,
    policies,
    review,
    screen,
    terminal,
)
