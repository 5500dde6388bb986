"""A fake Postmark for real worker processes: a threaded HTTP server on loopback (ephemeral port) that speaks as
much of Postmark's send API as django-anymail's Postmark backend uses (anymail/backends/postmark.py: one JSON
POST to `<api_url>email` with the `X-Postmark-Server-Token` header, answered with `MessageID`, `ErrorCode` 0 and
`Message`). Workers use it through the product's own settings:
EMAIL_BACKEND=anymail.backends.postmark.EmailBackend and ANYMAIL_POSTMARK_API_URL (see `env()`).

It records every request and every message a recipient would see. When `dedupe` is on, a second message with
an email key it already accepted (our `metadata={"email_key": …}`, Postmark's "Metadata") is answered as a
success but not delivered again, as an ESP honouring an idempotency key does; off, it behaves like SMTP.
It can also play the outside world's faults: be slow, be down (5xx), or SIGKILL a worker (its process group, its main
process or its pool children) when a given message arrives, before or after accepting it."""

import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.utils import timezone

SERVER_TOKEN = "fake-postmark-server-token"


class FakePostmark:
    def __init__(self, *, dedupe=True):
        self.dedupe = dedupe
        self.down = False
        self.delay = 0  # seconds each answer takes
        self.requests = []  # (key, to) of every send request that arrived
        self.accepted = []  # (key, to) of every one answered with success
        self.inbox = []  # (key, to) of every message a recipient got
        self.killed = threading.Event()
        self._lock = threading.Lock()
        self._message_ids = {}
        self._kill = None
        self._on_request = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()

    def env(self):
        """What a worker's environment needs to send through this server."""
        host, port = self._server.server_address
        return {
            "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
            "ANYMAIL_POSTMARK_API_URL": f"http://{host}:{port}/",
            "ANYMAIL_POSTMARK_SERVER_TOKEN": SERVER_TOKEN,
            "ANYMAIL_WEBHOOK_SECRET": "fake:fake",  # required with any anymail ESP and DEBUG off
        }

    def kill_on(self, key, process, *, accepted, target="group", every_time=False):
        """SIGKILLs a Celery worker when the message with `key` arrives, before accepting it or (`accepted`) after
        accepting it but before answering: a worker that dies before, or after, the provider call. `target`: the
        whole process group of `process` ("group"), only `process` ("main"; the answer then waits, up to 10 s, for
        the pool children to die with it), or only its pool children ("pool", which the main process outlives).
        Once, or `every_time` the message arrives (a message that kills whoever sends it)."""
        self._kill = (key, process.pid, accepted, target, every_time)

    def on_request(self, count, action):
        """Calls `action()` while holding back the answer to the `count`-th request."""
        self._on_request = (count, action)

    def requests_of(self, key):
        return sum(k == key for k, _ in self.requests)

    def accepted_of(self, key):
        return sum(k == key for k, _ in self.accepted)

    def delivered(self, key):
        return sum(k == key for k, _ in self.inbox)

    def inbox_of(self, address):
        """The email keys `address` received, with how often."""
        return Counter(k for k, to in self.inbox if to == address)

    def receive(self, payload):
        """Handles one send request: returns (status, answer), or None to hang up without answering."""
        key, to = payload.get("Metadata", {}).get("email_key", ""), payload["To"]
        with self._lock:
            self.requests.append((key, to))
            count = len(self.requests)
        if self._on_request and self._on_request[0] == count:
            self._on_request[1]()
        time.sleep(self.delay)
        if self.down:
            return 503, {"ErrorCode": 0, "Message": "Service Unavailable"}
        kill = self._kill if self._kill and self._kill[0] == key else None
        if kill and not kill[2]:
            return self._kill_now(kill)
        with self._lock:
            first = key not in self._message_ids
            message_id = self._message_ids.setdefault(key, str(uuid.uuid4()))
            self.accepted.append((key, to))
            if first or not self.dedupe:
                self.inbox.append((key, to))
        if kill:
            return self._kill_now(kill)
        return 200, {
            "To": to,
            "SubmittedAt": timezone.now().isoformat(),
            "MessageID": message_id,
            "ErrorCode": 0,
            "Message": "OK",
        }

    def _kill_now(self, kill):
        _, pid, _, target, every_time = kill
        if not every_time:
            self._kill = None
        if target == "group":
            os.killpg(pid, signal.SIGKILL)
        elif target == "main":
            pool = children(pid)
            os.kill(pid, signal.SIGKILL)
            # Hanging up at once would tell a child that still lives about the failure before it dies (if it dies).
            deadline = time.monotonic() + 10
            while any(map(running, pool)) and time.monotonic() < deadline:
                time.sleep(0.05)
        else:
            for child in children(pid):
                os.kill(child, signal.SIGKILL)
        self.killed.set()
        return None


def running(pid):
    """Whether process `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid):
    """The processes `pid` (any of its threads) forked: a prefork worker's pool."""
    return [int(child) for tasks in Path(f"/proc/{pid}/task").glob("*/children") for child in tasks.read_text().split()]


def _handler(provider):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path != "/email":
                return self._answer(404, {"ErrorCode": 404, "Message": "Not found"})
            if self.headers.get("X-Postmark-Server-Token") != SERVER_TOKEN:
                return self._answer(401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."})
            answer = provider.receive(json.loads(body))
            if answer is None:
                self.close_connection = True  # the sender is dead
                return None
            return self._answer(*answer)

        def _answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):
            pass

    return Handler
