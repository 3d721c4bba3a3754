"""The hall dashboard (hall manager) and the district view across the halls."""

from __future__ import annotations
