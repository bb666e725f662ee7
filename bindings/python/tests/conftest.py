"""Fixtures: the development IDP (the `mc-devidp` binary on a free loopback port) and
listeners that record what they receive."""

import asyncio
import os
import pathlib
import subprocess
import threading
import time

import pytest

import mc_runtime as mc

REPO = pathlib.Path(__file__).resolve().parents[3]
TENANT = "demo"
ENROLLMENT_CLIENT = "AnonymousUserEnrollment"
AUDIENCE = "demo-api"


@pytest.fixture(scope="session")
def idp_url():
    """Starts `mc-devidp --addr 127.0.0.1:0` and reads its URL from the line it prints
    ("mc-devidp (development IDP, not for production) at http://127.0.0.1:PORT")."""
    binary = os.environ.get("MC_DEVIDP", str(REPO / "target" / "debug" / "mc-devidp"))
    process = subprocess.Popen(
        [binary, "--addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        # Its tracing log shares stdout: keep it to warnings, and skip any line before the URL.
        env={**os.environ, "RUST_LOG": "warn", "NO_COLOR": "1"},
    )
    try:
        seen = []
        for _ in range(20):
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            if " at http://127.0.0.1:" in line:
                break
        else:
            line = ""
        assert " at http://127.0.0.1:" in line, f"mc-devidp printed no URL: {seen!r}"
        yield line.strip().rsplit(" at ", 1)[1]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(coroutine):
    """Runs one coroutine of the async API on a fresh asyncio loop."""
    return asyncio.run(coroutine)


class Recorder:
    """Records every event; `wait_for` blocks until one matches (listeners run on their own
    threads, so delivery is asynchronous to the post that caused it)."""

    def __init__(self):
        self.events = []
        self._changed = threading.Condition()

    def record(self, event):
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    names = [mc.event_type_name(e) if not isinstance(e, str) else e for e in self.events]
                    raise AssertionError(f"no matching event within {timeout}s; got {names}")
                self._changed.wait(left)

    def names(self):
        with self._changed:
            return [mc.event_type_name(e) for e in self.events]


class RecordingListener(mc.EventListener):
    def __init__(self):
        self.recorder = Recorder()

    def on_event_received(self, event):
        self.recorder.record(event)


class RecordingHandler(mc.SynchronousEventHandler):
    def __init__(self):
        self.recorder = Recorder()

    def execute_event(self, event):
        self.recorder.record(event)


class RecordingJsonListener(mc.JsonEventListener):
    def __init__(self):
        self.recorder = Recorder()

    def on_event_json(self, json):
        self.recorder.record(json)


def answers(request_id):
    """A predicate: the event answers the request with this id."""
    return lambda event: mc.event_request_id(event) == request_id


def config(idp_url, store):
    return mc.MasterControllerConfig(
        server_url=idp_url, store=store, audience_origins={AUDIENCE: [idp_url]}
    )


@pytest.fixture
def memory_controller(idp_url):
    controller = mc.MasterController(config(idp_url, mc.StoreLocation.MEMORY()))
    yield controller
    controller.shutdown()
