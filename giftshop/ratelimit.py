"""Atomic attempt limits for guessable secrets (gift codes).

DRF's throttles read-then-write the cache, so concurrent requests slip past them (encode/django-rest-framework
#8127). Here every attempt first *reserves* a slot with an atomic INCR on each of its keys (client address,
account); a request over any limit is refused before the code is looked up, so even a valid code gets 429
once a client is over. Attempts that turn out valid give their slot back, so only failures use up the budget.
"""

import contextlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle


class LimitExceeded(Exception):
    def __init__(self, retry_after):
        super().__init__(f"Too many attempts; try again in {retry_after} seconds.")
        self.retry_after = retry_after


@dataclass
class Reservation:
    keys: list

    def release(self):
        """The attempt was valid: it does not count against the client."""
        for key in self.keys:
            with contextlib.suppress(ValueError):  # the window expired meanwhile: nothing to give back
                cache.decr(key)


def _incr(key, window):
    for _attempt in range(3):
        cache.add(key, 0, timeout=window + 1)
        try:
            return cache.incr(key)
        except ValueError:  # expired between add and incr
            continue
    return cache.incr(key)


def reserve(scope, identities, *, limit=None, window=None):
    """Reserves one attempt for each identity (e.g. ["ip:1.2.3.4", "customer:7"]) or raises LimitExceeded."""
    limit = limit or settings.GIFT_CODE_ATTEMPT_LIMIT
    window = window or settings.GIFT_CODE_ATTEMPT_WINDOW
    now = int(time.time())
    bucket = now // window
    keys = [f"attempts:{scope}:{identity}:{bucket}" for identity in identities if identity]
    reserved = []
    for key in keys:
        count = _incr(key, window)
        reserved.append(key)
        if count > limit:
            Reservation(reserved).release()
            raise LimitExceeded(retry_after=(bucket + 1) * window - now)
    return Reservation(reserved)


def attempt(scope, identities, action, *, is_guess):
    """Runs `action` under the attempt limits of `identities`: raises LimitExceeded before running it when any is
    over; an attempt that fails as a guess (`is_guess(error)`) keeps its slot, anything else gives it back."""
    reservation = reserve(scope, identities)
    try:
        result = action()
    except Exception as error:
        if not is_guess(error):
            reservation.release()
        raise
    reservation.release()
    return result


def identities(request):
    """Who an attempt is counted against: the client address (X-Forwarded-For only behind NUM_PROXIES trusted
    proxies) and the account."""
    return [f"ip:{BaseThrottle().get_ident(request)}", f"customer:{request.user.pk}"]
