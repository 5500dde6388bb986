"""Helpers for the tests that run real processes (gunicorn, Celery workers and beats) as subprocesses, each started
in a process group of its own (`start_new_session=True`) so that it can be stopped with its children."""

import os
import signal
import socket
import subprocess
from contextlib import suppress


def free_port():
    """A loopback TCP port free a moment ago, for a server the test is about to start."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
