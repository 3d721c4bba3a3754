"""Argument rules of getwxacodeunlimit, shared by the client's pre-check and the emulator."""

from __future__ import annotations

import string

SCENE_MAX_LENGTH = 32
SCENE_CHARS = frozenset(string.ascii_letters + string.digits + "!#$&'()*+,/:;=?@-._~")
MIN_WIDTH = 280
MAX_WIDTH = 1280
ENV_VERSIONS = ("release", "trial", "develop")


def scene_problem(scene: str) -> str | None:
    """Say why WeChat would refuse this scene, or None if it is fine."""
    if not scene:
        return "scene is empty"
    if len(scene) > SCENE_MAX_LENGTH:
        return f"scene is longer than {SCENE_MAX_LENGTH} characters"
    bad = sorted({c for c in scene if c not in SCENE_CHARS})
    if bad:
        return f"scene contains characters outside the allowed set: {''.join(bad)!r}"
    return None


def page_problem(page: str) -> str | None:
    """Say why WeChat would refuse this page path, or None if it is fine."""
    if page.startswith("/"):
        return "page must not start with /"
    if "?" in page:
        return "page takes no query; pass parameters in scene"
    return None
