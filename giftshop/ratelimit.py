"""Atomic attempt limits for guessable secrets (gift codes), per client and account, and a global failure budget.

DRF's throttles read-then-write the cache, so concurrent requests slip past them (encode/django-rest-framework
#8127). Here every attempt first *reserves* a slot with an atomic INCR on each of its keys (client address,
account); a request over any limit is refused before the code is looked up, so even a valid code gets 429
once a client is over. Attempts that turn out valid give their slot back, so only failures use up the budget.

Per-client limits do not bound a botnet's guesses, so failed *typed* codes also count against one global budget
per window (RL-R1). The attempt that exceeds it logs one ERROR on the `giftshop.security` logger (once per window:
wire it to the log alerting) and pauses typed codes for GIFT_CODE_PAUSE_SECONDS: every typed code, valid or not, is
then refused with 429 before its look-up, while a link token (128 bits, not guessable) still works.

With Redis (production, tests) each step is one round trip: a Lua script, so a reservation's INCRs and its
check are one atomic unit. Other cache backends (LocMemCache when REDIS_URL is unset) use the cache's own atomic
`add`/`incr`, a few calls per step. Times come from this process's clock, never Redis's, and a pause is stored as
the instant it ends, so its key's TTL only collects garbage.
"""

import contextlib
import hashlib
import ipaddress
import logging
import secrets
import time
import weakref

from django.conf import settings
from django.core import signing
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.utils.translation import gettext, ngettext
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger("giftshop.security")


class LimitExceeded(Exception):
    status = 429

    def __init__(self, retry_after):
        self.retry_after = max(int(retry_after), 1)
        self.minutes = -(-self.retry_after // 60)  # rounded up
        # Translated when raised, in the language of the request that was refused.
        super().__init__(self.text(self.minutes))

    @staticmethod
    def text(minutes):
        return ngettext(
            "Too many attempts. Try again in %(minutes)d minute.",
            "Too many attempts. Try again in %(minutes)d minutes.",
            minutes,
        ) % {"minutes": minutes}


class TypedCodesPaused(LimitExceeded):
    """The global budget of failed guesses is spent: typed codes are refused for a while, links still work."""

    @staticmethod
    def text(minutes):
        return ngettext(
            "Too many wrong gift codes have been tried on this site, so typed codes are paused for %(minutes)d "
            "minute. Open the redeem link in your gift email instead: it still works.",
            "Too many wrong gift codes have been tried on this site, so typed codes are paused for %(minutes)d "
            "minutes. Open the redeem link in your gift email instead: it still works.",
            minutes,
        ) % {"minutes": minutes}


class TooManyLogins(LimitExceeded):
    @staticmethod
    def text(minutes):
        return ngettext(
            "Too many failed logins. Try again in %(minutes)d minute.",
            "Too many failed logins. Try again in %(minutes)d minutes.",
            minutes,
        ) % {"minutes": minutes}


class TooManyRegistrations(LimitExceeded):
    @staticmethod
    def text(minutes):
        return ngettext(
            "Too many registrations from your network. Try again in %(minutes)d minute.",
            "Too many registrations from your network. Try again in %(minutes)d minutes.",
            minutes,
        ) % {"minutes": minutes}


class LimitsUnavailable(LimitExceeded):
    """The counters cannot be reached (Redis is down): attempts are refused rather than let through unlimited."""

    status = 503

    @staticmethod
    def text(minutes):
        return gettext("Gift codes cannot be checked just now. Please try again in a minute.")


UNAVAILABLE_RETRY_AFTER = 30


# KEYS: the attempt's counters, then the pause key. ARGV: limit, counter TTL, now, check the pause (1/0).
# Returns {0, 0} reserved; {1, 0} over a limit (nothing kept); {2, until} typed codes paused until `until`.
_RESERVE = """
local last = #KEYS - 1
if ARGV[4] == '1' then
  local paused = tonumber(redis.call('GET', KEYS[#KEYS]) or '0') or 0
  if paused > tonumber(ARGV[3]) then return {2, paused} end
end
local over = false
for i = 1, last do
  local count = redis.call('INCR', KEYS[i])
  if count == 1 then redis.call('EXPIRE', KEYS[i], ARGV[2]) end
  if count > tonumber(ARGV[1]) then over = true end
end
if over then
  for i = 1, last do redis.call('DECR', KEYS[i]) end
  return {1, 0}
end
return {0, 0}
"""
# A counter that expired meanwhile is not recreated at -1.
_RELEASE = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('DECR', KEYS[i]) end
end
return 0
"""
# KEYS: this window's global failure counter, the pause key. ARGV: budget, counter TTL, now, pause end, pause TTL.
# Returns {failures so far in the window, 1 if this call started a pause}.
_FAIL = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if count > tonumber(ARGV[1]) then
  local paused = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
  if paused <= tonumber(ARGV[3]) then
    redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[5])
    return {count, 1}
  end
end
return {count, 0}
"""


class _RedisCounters:
    """One Lua script per step, on one `redis.Redis` client per connection pool (Django's RedisCache builds a new
    client, with its ~170-entry callback table, on every call)."""

    def __init__(self, client):
        self.client = client
        self.reserve_script = client.register_script(_RESERVE)
        self.release_script = client.register_script(_RELEASE)
        self.fail_script = client.register_script(_FAIL)

    def reserve(self, keys, pause_key, *, limit, ttl, now, check_pause):
        outcome, until = self.reserve_script(keys=[*keys, pause_key], args=[limit, ttl, now, int(check_pause)])
        return outcome, until

    def release(self, keys):
        self.release_script(keys=keys)

    def fail(self, key, pause_key, *, budget, ttl, now, pause_until, pause_ttl):
        count, started = self.fail_script(keys=[key, pause_key], args=[budget, ttl, now, pause_until, pause_ttl])
        return count, bool(started)


class _CacheCounters:
    """Any other Django cache: per-key atomic `add` + `incr` (exact within the one process LocMemCache serves)."""

    def __init__(self, backend):
        self.backend = backend

    def _incr(self, key, ttl):
        for _attempt in range(3):
            self.backend.add(key, 0, timeout=ttl)
            with contextlib.suppress(ValueError):  # expired between add and incr
                return self.backend.incr(key)
        return self.backend.incr(key)

    def reserve(self, keys, pause_key, *, limit, ttl, now, check_pause):
        if check_pause and (until := self.backend.get(pause_key) or 0) > now:
            return 2, until
        counts = [self._incr(key, ttl) for key in keys]
        if any(count > limit for count in counts):
            self.release(keys)
            return 1, 0
        return 0, 0

    def release(self, keys):
        for key in keys:
            with contextlib.suppress(ValueError):  # the window expired meanwhile: nothing to give back
                self.backend.decr(key)

    def fail(self, key, pause_key, *, budget, ttl, now, pause_until, pause_ttl):
        count = self._incr(key, ttl)
        if count > budget and (self.backend.get(pause_key) or 0) <= now:
            self.backend.set(pause_key, pause_until, timeout=pause_ttl)
            return count, True
        return count, False


_redis_counters = weakref.WeakKeyDictionary()  # RedisCacheClient -> _RedisCounters


def _counters():
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return _CacheCounters(backend), (lambda key: key)
    cache_client = backend._cache  # Django's RedisCacheClient: it owns the connection pools
    counters = _redis_counters.get(cache_client)
    if counters is None:
        counters = _redis_counters[cache_client] = _RedisCounters(cache_client.get_client(write=True))
    return counters, backend.make_key  # the keys Django's own cache calls would use (prefix, version)


def _pause_key(scope):
    return f"paused:{scope}"


class Reservation:
    def __init__(self, counters, keys):
        self.counters, self.keys = counters, keys

    def release(self):
        """The attempt was valid: it does not count against the client."""
        if self.keys:
            try:
                self.counters.release(self.keys)
            except RedisError as error:  # the attempt itself is done: at worst it stays counted until the window ends
                logger.warning("Could not give back a %s attempt slot: %r", self.keys[0].split(":")[1], error)


# Each scope's limit and window: the names of its settings.
LIMITS = {
    "gift-code": ("GIFT_CODE_ATTEMPT_LIMIT", "GIFT_CODE_ATTEMPT_WINDOW"),
    "login": ("LOGIN_ATTEMPT_LIMIT", "LOGIN_ATTEMPT_WINDOW"),
    "register": ("REGISTER_LIMIT", "REGISTER_WINDOW"),
    "recipient-change": ("RECIPIENT_CHANGES_PER_HOUR", "RECIPIENT_CHANGES_WINDOW"),
    # Paying with a stored card token that is not the payer's (a guessed or leaked one).
    "card-token": ("GIFT_CODE_ATTEMPT_LIMIT", "GIFT_CODE_ATTEMPT_WINDOW"),
}


def reserve(scope, identities, *, check_pause=False, fail_open=False):
    """Reserves one attempt for each identity (e.g. ["ip:1.2.3.4", "customer:7"]) or raises LimitExceeded
    (TypedCodesPaused when `check_pause` and the scope's global budget is spent). When the counters cannot be
    reached it raises LimitsUnavailable, or with `fail_open` lets the attempt through unlimited."""
    limit, window = (getattr(settings, name) for name in LIMITS[scope])
    counters, make_key = _counters()
    now = int(time.time())
    bucket = now // window
    keys = [make_key(f"attempts:{scope}:{identity}:{bucket}") for identity in identities if identity]
    try:
        outcome, until = counters.reserve(
            keys, make_key(_pause_key(scope)), limit=limit, ttl=window + 1, now=now, check_pause=check_pause
        )
    except RedisError as error:
        if fail_open:
            logger.warning("%s attempts not limited: the attempt counters cannot be reached: %r", scope, error)
            return Reservation(counters, [])
        # A secret is never checked without its limits.
        logger.error("%s attempts refused: the attempt counters cannot be reached: %r", scope, error)
        raise LimitsUnavailable(retry_after=UNAVAILABLE_RETRY_AFTER) from error
    if outcome == 2:
        raise TypedCodesPaused(retry_after=int(until) - now)
    if outcome == 1:
        raise LimitExceeded(retry_after=(bucket + 1) * window - now)
    return Reservation(counters, keys)


def record_failure(scope):
    """Counts one failed typed guess against the global budget; the one that exceeds it alerts and pauses."""
    budget, window = settings.GIFT_CODE_GLOBAL_FAILURE_LIMIT, settings.GIFT_CODE_GLOBAL_FAILURE_WINDOW
    pause = settings.GIFT_CODE_PAUSE_SECONDS
    counters, make_key = _counters()
    now = int(time.time())
    try:
        count, started = counters.fail(
            make_key(f"failures:{scope}:{now // window}"),
            make_key(_pause_key(scope)),
            budget=budget,
            ttl=window + 1,
            now=now,
            pause_until=now + pause,
            pause_ttl=pause + 60,
        )
    except RedisError as error:  # the guess was already refused; the next attempt's reservation fails closed
        logger.warning("Could not count a failed %s attempt globally: %r", scope, error)
        return
    if count == budget + 1:  # INCR is atomic: exactly one attempt per window sees this count
        logger.error(
            "ALERT gift-code guessing: %d failed %s attempts in this %d s window exceed the global budget of %d; "
            "typed codes are paused for %d s (link tokens still work). Likely a distributed brute-force attack.",
            count,
            scope,
            window,
            budget,
            pause,
        )
    elif started:
        logger.warning("Typed %s attempts paused again for %d s: %d failures in this window.", scope, pause, count)


def paused_for(scope):
    """Seconds left of the pause of typed attempts in `scope` (0: not paused), for operators."""
    until = cache.get(_pause_key(scope)) or 0
    return max(int(until) - int(time.time()), 0)


def failures(scope):
    """Failed typed attempts in `scope` in the current global window, for operators."""
    return cache.get(f"failures:{scope}:{int(time.time()) // settings.GIFT_CODE_GLOBAL_FAILURE_WINDOW}") or 0


def attempt(scope, identities, action, *, is_guess, typed=True, fail_open=False):
    """Runs `action` under the attempt limits of `identities`: raises LimitExceeded before running it when any is
    over (or, for a `typed` code, while typed codes are paused); an attempt that fails as a guess
    (`is_guess(error)`) keeps its slot and, when typed, counts against the global budget; anything else gives the
    slot back. A link token is not `typed`: 128 bits need no global budget, so it works during a pause.
    `fail_open`: see reserve()."""
    reservation = reserve(scope, identities, check_pause=typed, fail_open=fail_open)
    try:
        result = action()
    except Exception as error:
        if not is_guess(error):
            reservation.release()
        elif typed:
            record_failure(scope)
        raise
    reservation.release()
    return result


def client_address(request):
    """The client's address: X-Forwarded-For only behind NUM_PROXIES trusted proxies, else REMOTE_ADDR. An IPv6
    client is counted by its /64: one subscriber usually holds a whole /64 and can pick any address in it."""
    ident = (BaseThrottle().get_ident(request) or "").strip()
    try:
        address = ipaddress.ip_address(ident)
    except ValueError:
        return f"ip:{ident}"
    if address.version == 6:
        if address.ipv4_mapped:
            return f"ip:{address.ipv4_mapped}"
        return f"ip:{ipaddress.ip_network(f'{address}/64', strict=False)}"
    return f"ip:{address}"


def identities(request):
    """Who a gift-code attempt is counted against: the client address and the (logged-in) account."""
    return [client_address(request), f"customer:{request.user.pk}"]


DEVICE_COOKIE = "giftshop_device"
DEVICE_COOKIE_MAX_AGE = 180 * 24 * 3600
_DEVICE_SALT = "giftshop.ratelimit.device"


def _account(email):
    return hashlib.sha256((email or "").strip().lower().encode()).hexdigest()[:32]


def _device_of(request, account):
    """The device id a valid device cookie gives this client for this account, or None (OWASP's device cookies)."""
    value = request.COOKIES.get(DEVICE_COOKIE)
    if not value:
        return None
    try:
        payload = signing.loads(value, salt=_DEVICE_SALT, max_age=DEVICE_COOKIE_MAX_AGE)
    except signing.BadSignature:
        return None
    return payload.get("n") if isinstance(payload, dict) and payload.get("a") == account else None


def login_attempt(request, email, action, *, is_guess):
    """Runs a login under its limits. An unknown client is counted against its address and the address being
    logged in to (hashed: whether or not it has an account, so the limit itself tells nothing). A client that
    logged in to this account before carries a device cookie and has a budget of its own, so a stranger who uses
    up the account's budget cannot lock its owner out (OWASP's "device cookie" pattern). A successful login leaves
    `request.device_cookie` for DeviceCookieMiddleware to set. It fails open: with the counters unreachable, logins
    keep working (passwords are not 40-bit codes, and the hasher is slow)."""
    account = _account(email)
    device = _device_of(request, account)
    identities = [f"device:{device}"] if device else [client_address(request), f"account:{account}"]
    try:
        result = attempt("login", identities, action, is_guess=is_guess, typed=False, fail_open=True)
    except LimitExceeded as limited:
        raise TooManyLogins(limited.retry_after) from None
    payload = {"a": account, "n": device or secrets.token_urlsafe(16)}
    request.device_cookie = signing.dumps(payload, salt=_DEVICE_SALT)
    return result


class DeviceCookieMiddleware:
    """Sets the device cookie a successful login left on the request (web and admin logins alike)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        value = getattr(request, "device_cookie", None)
        if value:
            response.set_cookie(
                DEVICE_COOKIE,
                value,
                max_age=DEVICE_COOKIE_MAX_AGE,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response


def registration_attempt(request):
    """Counts one registration against the client address (every attempt: registering many addresses is what an
    enumeration or a spam run does) or raises TooManyRegistrations. Fails open while the counters are down."""
    try:
        reserve("register", [client_address(request)], fail_open=True)
    except LimitExceeded as limited:
        raise TooManyRegistrations(limited.retry_after) from None
