"""The policy desk: policies with their criteria, live match preview, publish, withdraw, reach
statistics.
"""

from __future__ import annotations
