"""Admin pages: halls, windows, categories, staff accounts and roles, seals and authorisations,
display tokens.
"""

from __future__ import annotations
