"""Helpers for the tests that run real processes (gunicorn, Celery workers and beats) as subprocesses, each started
in a process group of its own (`start_new_session=True`) so that it can be stopped with its children."""

import os
import signal
import socket
import subprocess
import time
from contextlib import suppress

import redis


def free_port():
    """A loopback TCP port free a moment ago, for a server the test is about to start."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_logged(command, *, env, log_path, cwd):
    """Starts `command` in a process group of its own, its output appended to `log_path`."""
    with log_path.open("a") as log:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(process):
    """Warm shutdown (SIGTERM, as a supervisor sends it), then SIGKILL for the process and any pool child left."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def wait_for(condition, *, timeout, interval=0.5):
    """Whether `condition()` came true within `timeout` seconds, asked every `interval`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


class RedisServer:
    """A redis-server of the test's own on a free loopback port, without persistence (a restart empties it)."""

    def __init__(self, log_path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path, self.process = log_path, None

    def start(self):
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def answers():
            with suppress(redis.ConnectionError):
                return client.ping()
            return False

        assert wait_for(answers, timeout=10, interval=0.1), "redis-server did not start"

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
