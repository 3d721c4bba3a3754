"""Staff passwords: argon2id hashes and the password policy.

Citizens never have passwords (they log in through WeChat); only staff accounts do.
"""

from __future__ import annotations

import functools
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.errors import ValidationFailed

MIN_LENGTH = 10
# argon2 would hash a megabyte happily; a cap keeps one login from costing more than another.
MAX_LENGTH = 128
MIN_CHARACTER_CLASSES = 3

# argon2-cffi's defaults are RFC 9106's low-memory profile (argon2id, t=3, m=64 MiB, p=4).
# Module state so tests can swap in a cheap profile; `needs_rehash` upgrades old hashes when the
# parameters change.
_hasher = PasswordHasher()


class PasswordTooWeak(ValidationFailed):
    code = "PASSWORD_TOO_WEAK"
    message = (
        "密码强度不足：至少 10 位，且包含大写字母、小写字母、数字、符号中的至少三类，"
        "不能与用户名相同"
    )


def hash_password(password: str) -> str:
    """The argon2id hash of `password`, salted."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches `password_hash`; a malformed hash never matches."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (rehash on next login)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash("not-a-password: timing equaliser")


def burn_verification(password: str) -> None:
    """Spend the time of one verification, for logins whose username does not exist.

    Without this an unknown username answers in microseconds and a wrong password in ~100 ms,
    which tells an attacker which usernames exist.
    """
    verify_password(_dummy_hash(_hasher), password)


def character_classes(password: str) -> int:
    """How many of lower case, upper case, digits and symbols `password` uses."""
    return sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c in string.digits for c in password),
            any(not c.isalnum() for c in password),
        )
    )


def check_password_policy(password: str, *, username: str) -> None:
    """Refuse a password that is short, uniform, too long, or the username itself."""
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append("too_short")
    if len(password) > MAX_LENGTH:
        problems.append("too_long")
    if character_classes(password) < MIN_CHARACTER_CLASSES:
        problems.append("too_few_character_classes")
    lowered = password.casefold()
    if username and (lowered == username.casefold() or lowered == username.casefold()[::-1]):
        problems.append("same_as_username")
    if problems:
        raise PasswordTooWeak(
            rules=problems, min_length=MIN_LENGTH, min_character_classes=MIN_CHARACTER_CLASSES
        )
