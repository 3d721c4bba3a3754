"""The global send rate of WeChat subscribe messages, shared by every push and notify worker.

WeChat's quota is one limit for the whole account, so there is one gate for it: with REDIS_URL,
per-second counters on Redis from which a notification worker takes one slot and a push batch
many, each in one atomic round trip (`RedisWindowSlots`); an in-process token bucket otherwise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class SendRateSettings(Protocol):
    """What the gate reads of the push's and the job runner's settings."""

    @property
    def redis_url(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def send_rate_limit(self) -> int: ...
    @property
    def send_rate_window_seconds(self) -> int: ...


class TokenBucket:
    """An in-process token bucket shared by the threads of one process."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(rate, 1.0)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        return self.take(1) == 1

    def take(self, wanted: int) -> int:
        """Up to `wanted` slots at once (0 when none is left now)."""
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            taken = min(wanted, int(self.tokens))
            self.tokens -= taken
            return max(taken, 0)


# One counter per second, `<key>@<epoch second>` (as Dramatiq's WindowRateLimiter keeps
# them), and a slot is free while the counters of the window sum to less than the limit. The
# script takes up to ARGV[1] slots in one atomic round trip: the limiter needs four per slot,
# and retries when workers collide.
_TAKE_SLOTS = """
local used = 0
for _, key in ipairs(KEYS) do used = used + tonumber(redis.call('GET', key) or '0') end
local taken = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used)
if taken <= 0 then return 0 end
redis.call('INCRBY', KEYS[1], taken)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return taken
"""


class RedisWindowSlots:
    """The global send rate on Redis."""

    def __init__(self, redis_url: str, key: str, *, limit: int, window: int) -> None:
        from redis import Redis

        self.key, self.limit, self.window = key, limit, window
        self._script = Redis.from_url(redis_url).register_script(_TAKE_SLOTS)

    def __call__(self) -> bool:
        return self.take(1) == 1

    def take(self, wanted: int) -> int:
        """Up to `wanted` slots at once (0 when the window is used up)."""
        second = int(time.time())
        keys = [f"{self.key}@{second - i}" for i in range(self.window)]
        return int(self._script(keys=keys, args=[wanted, self.limit, self.window * 1000]))


def make_gate(settings: SendRateSettings) -> TokenBucket | RedisWindowSlots:
    """The send rate: Redis-wide with REDIS_URL (every worker of every host), else per
    process.

    Called, a gate takes one slot (True) or none (False); `take(n)` takes up to n at once.
    """
    if not settings.redis_url:
        return TokenBucket(settings.send_rate_limit / settings.send_rate_window_seconds)
    return RedisWindowSlots(
        settings.redis_url,
        f"{settings.namespace}:wechat-send-rate",
        limit=settings.send_rate_limit,
        window=settings.send_rate_window_seconds,
    )


def take_slots(gate: Callable[[], bool] | None, wanted: int) -> int:
    """Send slots of the global rate for up to `wanted` messages: waits for the first only.

    Slots are taken before the batch is claimed, so a batch is never IN_FLIGHT while it
    waits for the rate (its lease covers the sends alone). Slots left unused by a short
    batch are simply lost: the rate errs on the slow side, never the fast one. A gate with
    `take(n)` gives many slots per call; a plain one is asked once per slot.
    """
    if gate is None:
        return wanted
    take: Callable[[int], int] | None = getattr(gate, "take", None)
    if take is not None:
        while not (slots := take(wanted)):
            time.sleep(0.005)
        return slots
    while not gate():
        time.sleep(0.005)
    slots = 1
    while slots < wanted and gate():
        slots += 1
    return slots
