"""The provider's rate limit, kept by every sender of every worker together: EMAIL_RATE_LIMIT requests a second
at most, and a pause for all of them when the provider says "too many" (a 429, honouring its Retry-After).

Each send takes the next free slot of a schedule kept in Redis (the generic cell rate algorithm: one key holding
the time the next request may go, moved on by 1/rate per request in one Lua script, on Redis's own clock), so
requests leave evenly spaced however many threads and machines send, and never more than the rate in any second.
Without Redis (the demo's embedded broker) the schedule is the process's own."""

import threading
import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from emails import metrics

# KEYS: the next-slot key, the pause key. ARGV: the interval between requests in microseconds.
# Returns how many microseconds the caller waits before its request (0: go now).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local paused = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if paused > slot then slot = paused end
if slot < now then slot = now end
redis.call('SET', KEYS[1], tostring(slot + tonumber(ARGV[1])), 'PX', 60000)
return slot - now
"""
# KEYS: the pause key. ARGV: the pause in microseconds. Pauses every sender until Redis's now + the pause (a later
# end set by another sender stays).
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if until_ > current then
  redis.call('SET', KEYS[1], tostring(until_), 'PX', math.floor(tonumber(ARGV[1]) / 1000) + 1000)
end
return until_ - now
"""


class _RedisSchedule:
    def __init__(self, client, make_key):
        self.take_script = client.register_script(_TAKE)
        self.pause_script = client.register_script(_PAUSE)
        self.slot_key, self.pause_key = make_key("email-throttle:slot"), make_key("email-throttle:paused")

    def take(self, interval):
        return int(self.take_script(keys=[self.slot_key, self.pause_key], args=[int(interval * 1e6)])) / 1e6

    def pause(self, seconds):
        self.pause_script(keys=[self.pause_key], args=[int(seconds * 1e6)])


class _LocalSchedule:
    def __init__(self):
        self.lock = threading.Lock()
        self.slot = self.paused = 0.0

    def take(self, interval):
        with self.lock:
            now = time.monotonic()
            slot = max(self.slot, self.paused, now)
            self.slot = slot + interval
            return slot - now

    def pause(self, seconds):
        with self.lock:
            self.paused = max(self.paused, time.monotonic() + seconds)


# One schedule per Redis server for the whole process. Keyed by the server, not by the cache backend: Django builds
# a backend (and a Redis client with its own connection pool) per thread, and every send task has new threads.
_schedules = {}
_schedules_lock = threading.Lock()


def _schedule():
    backend = caches["default"]
    key = tuple(backend._servers) if isinstance(backend, RedisCache) else "local"
    with _schedules_lock:
        if key not in _schedules:
            if isinstance(backend, RedisCache):
                client = backend._cache.get_client(write=True)
                _schedules[key] = _RedisSchedule(client, backend.make_key)
            else:
                _schedules[key] = _LocalSchedule()
        return _schedules[key]


def wait_turn():
    """Blocks the calling sender until its request may go: at once without a rate limit, else at its slot (and
    after any pause the provider asked for)."""
    rate = settings.EMAIL_RATE_LIMIT
    wait = _schedule().take(1 / rate if rate > 0 else 0)  # without a limit, only a pause waits
    if wait > 0:
        time.sleep(wait)


def pause(seconds):
    """The provider said "too many requests": every sender waits `seconds` before its next request."""
    metrics.throttled()
    _schedule().pause(max(seconds, 0.05))


def retry_after(error):
    """How long the provider asked us to wait, when `error` is its "too many requests" (an HTTP 429, with or
    without Retry-After), else None."""
    if getattr(error, "status_code", None) != 429:
        return None
    response = getattr(error, "response", None)
    header = response.headers.get("Retry-After") if response is not None else None
    try:
        return min(max(float(header), 0.05), 60.0)
    except (TypeError, ValueError):
        return 1.0
