"""The hall screen (a TV): latest calls, waiting counts, the entrance code; a display token, no
staff login.
"""

from __future__ import annotations
