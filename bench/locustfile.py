"""The users of `bench/load.py`, for `locust --headless` (load.py runs it once per phase; not meant to be run alone).

Reads three variables: BENCH_LOAD_DATA, the JSON file of what load.py seeded (offer, codes, JWTs, gifter ids, the
API key's Basic header); BENCH_LOAD_WEIGHTS, the phase's operations by weight (`{"verify": 4, "redeem": 2, ...}`);
BENCH_LOAD_RESULTS, where it writes, once every user has stopped, what the requests were answered per operation
and what load.py's database checks need (gifts redeemed, idempotency keys and their gifts, replays, orders).
Only the documented answer (200) counts as a success; anything else is a locust failure and counted by status.
"""

import json
import os
import random
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlencode

from locust import FastHttpUser, constant, events

DATA = json.loads(Path(os.environ["BENCH_LOAD_DATA"]).read_text())
WEIGHTS = json.loads(os.environ["BENCH_LOAD_WEIGHTS"])
# One iterator for every user: locust's users are greenlets of this one process, so each code goes to one request.
REDEEM = iter(DATA["redeem"])

statuses = defaultdict(Counter)  # operation -> status (0: no answer) -> count
unexpected = []  # (operation, status, start of the body), the first 20
redeemed = []  # gift ids whose redeem was answered 200
keys = {}  # idempotency key -> gift id of its first answer
replays = Counter()  # "replayed" / "not marked replayed" / "another gift"
orders = 0


def answered(operation, response):
    """Records the answer; True for a 200, the only one expected (a merchant replay is a 200 too)."""
    status = response.status_code
    statuses[operation][status] += 1
    if status == 200:
        response.success()
        return True
    body = (response.content or b"")[:200] if status else repr(response.error).encode()
    if len(unexpected) < 20:
        unexpected.append((operation, status, body.decode(errors="replace")))
    response.failure(f"{status} {body!r}")
    return False


def baseline(user):
    with user.client.get(f"/mediastore/v2/offers/{DATA['offer_id']}", name="baseline", catch_response=True) as r:
        answered("baseline", r)


def verify(user):
    code, token = random.choice(DATA["verify"]), random.choice(DATA["shoppers"])
    path = f"/mediastore/gifts/verification/{code}"
    headers = {"Authorization": f"Bearer {token}"}
    with user.client.get(path, name="verify", headers=headers, catch_response=True) as response:
        answered("verify", response)


def redeem(user):
    try:
        code, gift_id, token = next(REDEEM)
    except StopIteration:
        return verify(user)  # every code is spent: the mix goes on without redeems
    path = f"/mediastore/gifts/redeem/{code}"
    headers = {"Authorization": f"Bearer {token}"}
    with user.client.post(path, name="redeem", headers=headers, catch_response=True) as response:
        if answered("redeem", response):
            redeemed.append(gift_id)


def order(user):
    global orders
    body = json.dumps({"offerId": DATA["offer_id"], "buyAsAGift": True})
    headers = {"Authorization": f"Bearer {random.choice(DATA['shoppers'])}", "Content-Type": "application/json"}
    with user.client.post("/mediastore/orders", name="order", data=body, headers=headers, catch_response=True) as r:
        if answered("order", r):
            orders += 1


def merchant(user):
    """A gift with a fresh idempotency key, or one time in ten (once the user has some) an earlier key and body of
    this user's, which must come back replayed with the same gift."""
    replay = user.sent and random.random() < 0.1
    if replay:
        key, body, gift_id = random.choice(user.sent)
    else:
        key = f"bench-{random.getrandbits(64):016x}"
        body = urlencode(
            {
                "gifter[customer_id]": random.choice(DATA["gifter_ids"]),
                "gift_receiver[email]": f"friend-{key}@example.com",
                "subscription[plan_id]": DATA["offer_id"],
            }
        )
    headers = {
        "Authorization": DATA["basic"],
        "Content-Type": "application/x-www-form-urlencoded",
        "chargebee-idempotency-key": key,
    }
    with user.client.post("/api/v2/gifts", name="merchant", data=body, headers=headers, catch_response=True) as r:
        if not answered("merchant", r):
            return
        answer, replayed = r.json()["gift"]["id"], r.headers.get("chargebee-idempotency-replayed")
    if not replay:
        keys[key] = answer
        user.sent.append((key, body, answer))
    elif replayed != "true":
        replays["not marked replayed"] += 1
    elif answer != gift_id:
        replays["another gift"] += 1
    else:
        replays["replayed"] += 1


OPERATIONS = {f.__name__: f for f in (baseline, verify, redeem, order, merchant)}


class Client(FastHttpUser):
    # No pause: each user sends its next request as soon as the last is answered, like load.py's threads did.
    wait_time = constant(0)
    # The Host the bench environment allows (ALLOWED_HOSTS=localhost); the connection goes to 127.0.0.1.
    default_headers = {"Host": "localhost"}
    tasks = {OPERATIONS[name]: weight for name, weight in WEIGHTS.items()}

    def on_start(self):
        self.sent = []  # this user's merchant (key, body, gift id), for replays


@events.test_stop.add_listener
def write_results(**_):
    # test_stop fires once every user has stopped (load.py passes --stop-timeout, so each finishes its request).
    results = {
        "statuses": {operation: dict(counter) for operation, counter in statuses.items()},
        "unexpected": unexpected,
        "redeemed": redeemed,
        "keys": keys,
        "replays": replays,
        "orders": orders,
    }
    Path(os.environ["BENCH_LOAD_RESULTS"]).write_text(json.dumps(results))
