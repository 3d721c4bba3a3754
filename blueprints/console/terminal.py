"""The window terminal: a clerk's own window, its current ticket and the queue actions."""

from __future__ import annotations
