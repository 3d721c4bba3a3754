"""The console's start page: the desks the signed-in staff member may open."""

from __future__ import annotations

from flask import render_template

from blueprints.console import blp
from blueprints.console.access import console_page


@blp.get("/")
@console_page()
def home() -> str:
    return render_template("console/home.html")
