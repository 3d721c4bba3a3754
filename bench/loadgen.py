"""HTTP load from wrk (Debian's package) with a Lua script: one way for every bench.

A Python client costs about a millisecond of CPU per request on the same two cores as the
server, which squeezes every ratio between two servers toward 1. wrk costs the server next to
nothing. Each run reports the client's latency (wrk's own histogram) beside the server's time
for the same requests, read from the `Server-Timing: app;dur=<ms>` header each response
carries (`app.logs`), and the statuses that were not 2xx.

`Request.key` names an Idempotency-Key prefix: each request then sends `<prefix>-<n>`, so
retried keys never collide. `rate`, when given, paces the load: the connections share one
schedule of send times, at exponential gaps of mean 1 / rate (arrivals as independent callers
make them: a Poisson stream, with its bursts), and a connection whose answer came takes the next
free time on it. A gap stops at four intervals (one in 55 would be longer): a connection waits
for the others' turns too, and an unbounded gap could keep it idle past a balancer's keep-alive
timeout, which wrk counts as a read error though nothing failed. So the rate sent is the rate
offered while the server keeps up (wrk in Debian is not wrk2: with every connection
waiting for an answer the schedule slips, it does not burst to catch up). A fixed pause after
each answer, as before, sent less than offered by the answer's own time: 185/s of an offered
243/s at a take's p50 of 34 ms.

`minus`, when given, names a second metric of the same `Server-Timing` header (e.g. `wechat`
for `app;dur=9.1, wechat;dur=1.2`): the result then also holds the percentiles of `app` minus
that metric, request by request (`minus_p50`...), e.g. the server's own work beyond a call it
waits for. wrk's Lua sees one header per name (the last), so both metrics must share one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_LUA = r"""
local entries = {%(entries)s}
local minus = %(minus)s
local n = 0
local threads = {}
statuses = {}
timings = {}
beyond = {}
first_refusal = ""

setup = function(thread)
  table.insert(threads, thread)
end

%(pacing)s

request = function()
  n = n + 1
  local e = entries[((n - 1) %% #entries) + 1]
  local headers = {}
  for name, value in pairs(e.headers) do headers[name] = value end
  if e.key ~= "" then headers["Idempotency-Key"] = e.key .. "-" .. n end
  if e.body ~= "" then headers["Content-Type"] = "application/json" end
  return wrk.format(e.method, e.path, headers, e.body ~= "" and e.body or nil)
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local timing = headers["Server-Timing"] or headers["server-timing"]
  if timing then
    local ms = string.match(timing, "app;dur=([0-9.]+)")
    if ms then timings[#timings + 1] = tonumber(ms) end
    if ms and minus ~= "" then
      local other = string.match(timing, minus .. ";dur=([0-9.]+)")
      if other then beyond[#beyond + 1] = tonumber(ms) - tonumber(other) end
    end
  end
  if status >= 400 and first_refusal == "" then
    first_refusal = string.gsub(string.sub(body, 1, 200), "\n", " ")
  end
end

local function at(sorted, q)
  if #sorted == 0 then return 0 end
  local index = math.floor(q * (#sorted - 1) + 0.5) + 1
  return sorted[index]
end

done = function(summary, latency, requests)
  local all = {}
  local less = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      io.write(string.format("STATUS %%d=%%d\n", status, count))
    end
    for _, ms in ipairs(thread:get("timings")) do all[#all + 1] = ms end
    for _, ms in ipairs(thread:get("beyond")) do less[#less + 1] = ms end
    local body = thread:get("first_refusal")
    if body ~= "" then io.write("FIRST " .. body .. "\n") end
  end
  table.sort(all)
  table.sort(less)
  if #less > 0 then
    io.write(string.format("MINUS n=%%d p50=%%.3f p95=%%.3f p99=%%.3f\n",
      #less, at(less, 0.50), at(less, 0.95), at(less, 0.99)))
  end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format(
    "RESULT requests=%%d seconds=%%.3f socket_errors=%%d p50=%%.2f p95=%%.2f p99=%%.2f"
    .. " server_n=%%d server_p50=%%.2f server_p95=%%.2f server_p99=%%.2f\n",
    summary.requests, summary.duration / 1e6, errors,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    #all, at(all, 0.50), at(all, 0.95), at(all, 0.99)))
end
"""

_PACING = r"""
local interval_ms = %(interval_ms).4f
-- A monotonic clock in milliseconds (LuaJIT's FFI; wrk's Lua has no clock of its own).
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } loadgen_timespec;
  int clock_gettime(int clock, loadgen_timespec *now);
]]
local clock = ffi.new("loadgen_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end
local next_ms = 0
-- Gaps stop at four intervals; dividing by the clipped mean (1 - e^-4) keeps the rate.
local longest = 4
local scale = interval_ms / (1 - math.exp(-longest))
-- Called when a connection is ready to send: wait until the next free send time.
delay = function()
  local now = now_ms()
  local at = math.max(now, next_ms)
  -- An exponential gap (math.random() is in [0, 1), so the logarithm's argument is not 0).
  next_ms = at + scale * math.min(-math.log(1 - math.random()), longest)
  return math.floor(at - now + 0.5)
end
"""


def paced_delay_lua(rate: float | None) -> str:
    """Lua defining wrk's `delay` for a load paced at `rate` requests/s (see the module);
    empty for an unpaced load. One thread (`wrk -t1`): the schedule is the thread's."""
    return _PACING % {"interval_ms": 1000 / rate} if rate else ""


_MINUS = re.compile(r"MINUS n=(\d+) p50=([\d.-]+) p95=([\d.-]+) p99=([\d.-]+)")
_RESULT = re.compile(
    r"RESULT requests=(\d+) seconds=([\d.]+) socket_errors=(\d+) p50=([\d.]+) p95=([\d.]+)"
    r" p99=([\d.]+) server_n=(\d+) server_p50=([\d.]+) server_p95=([\d.]+) server_p99=([\d.]+)"
)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    key: str = ""  # Idempotency-Key prefix; empty: no key


@dataclass
class Result:
    """One wrk run: throughput, client and server latency (ms), statuses."""

    requests: int
    seconds: float
    socket_errors: int
    p50: float
    p95: float
    p99: float
    server_p50: float
    server_p95: float
    server_p99: float
    statuses: dict[int, int]
    first_refusal: str = ""
    # app;dur minus the `minus` metric, per request (run_wrk's `minus`); n = 0: none seen.
    minus_n: int = 0
    minus_p50: float = 0.0
    minus_p95: float = 0.0
    minus_p99: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def refused(self) -> int:
        """Responses that were not 2xx, plus requests that got no response."""
        return self.socket_errors + sum(
            count for status, count in self.statuses.items() if not 200 <= status < 300
        )

    def line(self, name: str) -> str:
        return (
            f"{name:<34} {self.rate:8.1f}/s  client p50 {self.p50:6.1f} p99 {self.p99:7.1f} ms"
            f"  server p50 {self.server_p50:6.2f} p99 {self.server_p99:7.2f} ms"
            f"  refused {self.refused}"
        )


def require_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not installed: apt-get install wrk (Debian's package)")
    return found


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def _lua_entry(request: Request) -> str:
    # "[ [==[" with a space: "[[" would open a Lua long string instead of a table key.
    headers = ", ".join(
        f"[ {_lua_string(name)} ] = {_lua_string(value)}" for name, value in request.headers.items()
    )
    return (
        f"{{method = {_lua_string(request.method)}, path = {_lua_string(request.path)},"
        f" headers = {{{headers}}}, body = {_lua_string(request.body)},"
        f" key = {_lua_string(request.key)}}}"
    )


def run_wrk(
    base_url: str,
    requests: Sequence[Request],
    *,
    connections: int,
    seconds: float,
    rate: float | None = None,
    timeout_seconds: int = 10,
    minus: str = "",
) -> Result:
    """Send `requests` round-robin over `connections` for `seconds`; wait for the result."""
    if not requests:
        raise ValueError("no requests to send")
    with tempfile.TemporaryDirectory(prefix="wrk-") as folder:
        script = Path(folder) / f"{uuid.uuid4().hex}.lua"
        entries = ",\n".join(_lua_entry(request) for request in requests)
        script.write_text(
            _LUA
            % {"entries": entries, "pacing": paced_delay_lua(rate), "minus": _lua_string(minus)},
            encoding="utf-8",
        )
        done = subprocess.run(
            [
                require_wrk(),
                "-t1",
                f"-c{connections}",
                f"-d{max(round(seconds), 1)}s",
                "--timeout",
                f"{timeout_seconds}s",
                "-s",
                str(script),
                base_url,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 120,
        )
    matched = _RESULT.search(done.stdout)
    if not matched:
        raise SystemExit(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    groups = matched.groups()
    statuses = {int(s): int(c) for s, c in re.findall(r"^STATUS (\d+)=(\d+)$", done.stdout, re.M)}
    first = re.search(r"^FIRST (.*)$", done.stdout, re.M)
    less = _MINUS.search(done.stdout)
    return Result(
        requests=int(groups[0]),
        seconds=float(groups[1]),
        socket_errors=int(groups[2]),
        p50=float(groups[3]),
        p95=float(groups[4]),
        p99=float(groups[5]),
        server_p50=float(groups[7]),
        server_p95=float(groups[8]),
        server_p99=float(groups[9]),
        statuses=statuses,
        first_refusal=first.group(1) if first else "",
        minus_n=int(less.group(1)) if less else 0,
        minus_p50=float(less.group(2)) if less else 0.0,
        minus_p95=float(less.group(3)) if less else 0.0,
        minus_p99=float(less.group(4)) if less else 0.0,
    )
