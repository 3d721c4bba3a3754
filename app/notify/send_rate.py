"""The global send rate of WeChat subscribe messages, shared by every push and notify worker.

WeChat's quota is one limit for the whole account, so there is one gate for it: with REDIS_URL,
per-second counters on Redis from which a notification worker takes one slot and a push batch
many, each in one atomic round trip (`RedisWindowSlots`); an in-process token bucket otherwise.
A push batch leaves the last few slots of each window to the notifications (`take_slots`'s
`keep`) and gives back the slots its claim did not use (`give_back`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
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

    def take(self, wanted: int, *, keep: int = 0) -> int:
        """Up to `wanted` slots at once, leaving `keep` (0 when no more is left now)."""
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            taken = max(min(wanted, int(self.tokens) - keep), 0)
            self.tokens -= taken
            return taken

    def take_at(self, second: int, wanted: int, *, keep: int = 0) -> int:
        """`take`: a bucket has no windows, so the second does not matter."""
        return self.take(wanted, keep=keep)

    def give_back(self, second: int, unused: int) -> None:
        """Return slots taken and not used (never beyond the bucket's capacity)."""
        with self._lock:
            self.tokens = min(self.capacity, self.tokens + max(unused, 0))


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
# Gives back up to ARGV[1] slots to the counter they were taken from: never below zero (a
# counter already expired, or emptied, has nothing of them left to give back).
_GIVE_BACK = """
local back = math.min(tonumber(ARGV[1]), tonumber(redis.call('GET', KEYS[1]) or '0'))
if back <= 0 then return 0 end
redis.call('DECRBY', KEYS[1], back)
return back
"""


class RedisWindowSlots:
    """The global send rate on Redis."""

    def __init__(self, redis_url: str, key: str, *, limit: int, window: int) -> None:
        from redis import Redis

        self.key, self.limit, self.window = key, limit, window
        redis = Redis.from_url(redis_url)
        self._take = redis.register_script(_TAKE_SLOTS)
        self._give_back = redis.register_script(_GIVE_BACK)

    def __call__(self) -> bool:
        return self.take(1) == 1

    def take(self, wanted: int) -> int:
        """Up to `wanted` slots at once (0 when the window is used up)."""
        return self.take_at(int(time.time()), wanted)

    def take_at(self, second: int, wanted: int, *, keep: int = 0) -> int:
        """`take`, leaving `keep` slots of the window to others, counted in `second`'s counter
        (the one `give_back` returns them to)."""
        keys = [f"{self.key}@{second - i}" for i in range(self.window)]
        return int(self._take(keys=keys, args=[wanted, self.limit - keep, self.window * 1000]))

    def give_back(self, second: int, unused: int) -> None:
        """Return slots taken in `second` and not used. To that second's counter only: given to
        a later one, slots whose second had left the window would be counted free twice."""
        if unused > 0:
            self._give_back(keys=[f"{self.key}@{second}"], args=[unused])


def make_gate(settings: SendRateSettings) -> TokenBucket | RedisWindowSlots:
    """The send rate: Redis-wide with REDIS_URL (every worker of every host), else per
    process.

    Called, a gate takes one slot (True) or none (False); `take(n)` takes up to n at once.
    """
    if not settings.redis_url:
        # `limit` per window, as the Redis counters: a full window's worth may go at once.
        return TokenBucket(
            settings.send_rate_limit / settings.send_rate_window_seconds,
            burst=settings.send_rate_limit,
        )
    return RedisWindowSlots(
        settings.redis_url,
        f"{settings.namespace}:wechat-send-rate",
        limit=settings.send_rate_limit,
        window=settings.send_rate_window_seconds,
    )


@dataclass(frozen=True)
class Slots:
    """Send slots taken at once, and the second they were counted in (`give_back`)."""

    count: int
    second: int


def take_slots(gate: Callable[[], bool] | None, wanted: int, *, keep: int = 0) -> Slots:
    """Send slots of the global rate for up to `wanted` messages, leaving `keep` of each
    window to the notification workers: waits for the first only.

    Slots are taken before the batch is claimed, so a batch is never IN_FLIGHT while it
    waits for the rate (its lease covers the sends alone); those a short batch leaves unused
    go back with `give_back`. A gate with `take_at(second, n, keep=k)` gives many slots per
    call; a plain one is asked once per slot (and cannot keep or give back any).
    """
    second = int(time.time())
    if gate is None:
        return Slots(wanted, second)
    take_at: Callable[..., int] | None = getattr(gate, "take_at", None)
    if take_at is not None:
        while not (count := take_at(second, wanted, keep=keep)):
            time.sleep(0.005)
            second = int(time.time())
        return Slots(count, second)
    while not gate():
        time.sleep(0.005)
    count = 1
    while count < wanted and gate():
        count += 1
    return Slots(count, int(time.time()))


def give_back(gate: Callable[[], bool] | None, slots: Slots, *, used: int) -> None:
    """Return the slots of `slots` not used, so the account's quota is not spent on nothing
    (a citizen's notification waits for the window otherwise)."""
    give: Callable[[int, int], None] | None = getattr(gate, "give_back", None)
    if give is not None and used < slots.count:
        give(slots.second, slots.count - used)
