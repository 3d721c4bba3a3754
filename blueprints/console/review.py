"""The reviewer desk: the department's queue by deadline, an application's file, decisions, post-
approval checks.
"""

from __future__ import annotations
