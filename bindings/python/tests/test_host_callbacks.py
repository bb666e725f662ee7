"""Host code plugged into the runtime: listeners that raise, the JSON entry point, the log
sink, and a host biometric key provider."""

import gc
import json
import threading
import time

import mc_runtime as mc
# The event catalog's own types (mc-events, UniFFI namespace mc_events).
from mc_runtime.mc_events import (
    AuthenticationMode,
    EnrollAnonymousUserEvent,
    Event,
    ExchangeIamTokenEvent,
    GetInformationEvent,
    GetStateEvent,
    OfflineLoginEvent,
    RequestEvent,
    RestartEvent,
    SdkState,
    StartEvent,
    StatusType,
)

from conftest import AUDIENCE, ENROLLMENT_CLIENT, TENANT, Recorder, RecordingListener, answers, config, run


class RaisingListener(mc.EventListener):
    """Raises on every event, after recording it."""

    def __init__(self):
        self.recorder = Recorder()

    def on_event_received(self, event):
        self.recorder.record(event)
        raise RuntimeError("host bug")


def test_a_listener_that_raises_does_not_break_the_runtime(memory_controller):
    controller = memory_controller
    raising = RaisingListener()
    good = RecordingListener()
    # Registrations are kept: dropping one removes its listener.
    raising_registration = controller.add_event_listener(raising)
    good_registration = controller.add_event_listener(good)

    first = run(controller.post_event(RequestEvent.START_EVENT(StartEvent())))
    assert first[0].info.status == StatusType.OK
    second = run(controller.post_event(RequestEvent.GET_STATE_EVENT(GetStateEvent())))
    assert second[0].sdk_state == SdkState.ACTIVATION_REQUIRED
    good.recorder.wait_for(answers(second[0].info.request_id))
    third = run(controller.post_event(RequestEvent.GET_INFORMATION_EVENT(GetInformationEvent())))
    good.recorder.wait_for(answers(third[0].info.request_id))
    # The raising listener stayed registered and was called for every event after raising.
    for result in (first, second, third):
        raising.recorder.wait_for(answers(result[0].info.request_id))
    assert raising_registration.remove() and good_registration.remove()


def test_post_json_answers_malformed_lines_with_invalid_parameter(memory_controller):
    controller = memory_controller
    listener = RecordingListener()
    registration = controller.add_event_listener(listener)

    answer = json.loads(run(controller.post_json("{this is not json")))
    assert answer["type"] == "StatusResultEvent"
    assert answer["status"] == "INVALID_PARAMETER"
    assert answer["hasErrorOccurred"] is True
    assert answer["errorCode"] == 100000004  # MALFORMED_REQUEST
    assert answer["requestId"]  # assigned by the runtime, so listeners can match it
    listener.recorder.wait_for(answers(answer["requestId"]))

    wrong_type = json.loads(
        run(controller.post_json('{"type":"ExchangeIamTokenEvent","requestId":"r-1","audience":5}'))
    )
    assert wrong_type["type"] == "ExchangeIamTokenResultEvent"
    assert wrong_type["requestId"] == "r-1"
    assert wrong_type["status"] == "INVALID_PARAMETER"
    assert wrong_type["errorDescription"] == "field `audience`: expected a string"

    unknown = json.loads(run(controller.post_json('{"type":"FooEvent"}')))
    assert unknown["status"] == "INVALID_PARAMETER"
    assert "FooEvent" in unknown["errorDescription"]

    started = json.loads(run(controller.post_json('{"type":"StartEvent","requestId":"s-1"}')))
    assert started["type"] == "StartResultEvent"
    assert started["requestId"] == "s-1"
    assert started["status"] == "OK"
    assert started["sdkState"] == "ACTIVATION_REQUIRED"
    assert registration.remove()


def test_dropping_a_registration_removes_its_listener(memory_controller):
    controller = memory_controller
    kept = RecordingListener()
    dropped = RecordingListener()
    kept_registration = controller.add_event_listener(kept)
    dropped_registration = controller.add_event_listener(dropped)
    started = run(controller.post_event(RequestEvent.START_EVENT(StartEvent())))
    dropped.recorder.wait_for(answers(started[0].info.request_id))

    # Garbage collection of the registration removes the listener (no thread is left behind).
    del dropped_registration
    gc.collect()
    state = run(controller.post_event(RequestEvent.GET_STATE_EVENT(GetStateEvent())))
    kept.recorder.wait_for(answers(state[0].info.request_id))
    time.sleep(0.2)
    assert not any(mc.event_request_id(e) == state[0].info.request_id for e in list(dropped.recorder.events))
    # remove() stays and is idempotent.
    assert kept_registration.remove() is True
    assert kept_registration.remove() is False


class CollectingSink(mc.LogSink):
    def __init__(self):
        self.lines = []
        self.lock = threading.Lock()

    def log(self, level, target, message):
        with self.lock:
            self.lines.append((level, target, message))


def test_log_sink_receives_runtime_logs_without_secrets(idp_url):
    sink = CollectingSink()
    mc.set_log_sink(sink, "trace")
    try:
        controller = mc.MasterController(config(idp_url, mc.StoreLocation.MEMORY()))
        run(controller.post_event(RequestEvent.START_EVENT(StartEvent())))
        password = "correct horse battery staple"
        enrolled = run(
            controller.post_event(
                RequestEvent.ENROLL_ANONYMOUS_USER_EVENT(EnrollAnonymousUserEvent(
                    tenant_id=TENANT,
                    authentication_mode=AuthenticationMode.PASSWORD,
                    client_id=ENROLLMENT_CLIENT,
                    password=password,
                ))
            )
        )
        assert enrolled[0].info.status == StatusType.OK, enrolled[0].info.error_description
        exchanged = run(controller.post_event(RequestEvent.EXCHANGE_IAM_TOKEN_EVENT(ExchangeIamTokenEvent(audience=AUDIENCE))))
        assert exchanged[0].info.status == StatusType.OK
        controller.shutdown()
    finally:
        mc.clear_log_sink()

    with sink.lock:
        lines = list(sink.lines)
    assert len(lines) > 10
    assert any(target.startswith("mc_runtime") for _, target, _ in lines)
    assert any("request" in message and enrolled[0].info.request_id in message for _, _, message in lines)
    everything = "\n".join(message for _, _, message in lines)
    assert exchanged[0].token not in everything
    # A JWT's header is the same for every token of this IDP; its payload is unique.
    assert exchanged[0].token.split(".")[1] not in everything
    assert password not in everything
    # An invalid filter is a typed error, not a crash.
    try:
        mc.set_log_sink(sink, "[[[")
    except mc.ControllerError.InvalidConfiguration:
        pass
    else:
        raise AssertionError("an unreadable filter was accepted")


class SoftBiometric(mc.BiometricKeyProvider):
    """A stand-in for a phone keystore: keeps a key per user in memory and 'wraps' by XOR with
    it. Scripted failures play a cancelled prompt and a host bug."""

    def __init__(self):
        self.keys = {}
        self.prompts = []
        self.next_failure = None

    def _key(self, user):
        return self.keys[(user.tenant_id, user.user_id)]

    def _fail_if_scripted(self):
        failure, self.next_failure = self.next_failure, None
        if failure is not None:
            raise failure

    def create_key(self, user):
        self.keys[(user.tenant_id, user.user_id)] = bytes(range(1, 33))

    def wrap(self, user, plaintext, prompt):
        self.prompts.append(prompt)
        self._fail_if_scripted()
        key = self._key(user)
        return bytes(b ^ key[i % len(key)] for i, b in enumerate(plaintext))

    def unwrap(self, user, ciphertext, prompt):
        self.prompts.append(prompt)
        self._fail_if_scripted()
        key = self._key(user)
        return bytes(b ^ key[i % len(key)] for i, b in enumerate(ciphertext))

    def delete_key(self, user):
        self.keys.pop((user.tenant_id, user.user_id), None)


def test_host_biometric_key_provider(idp_url, tmp_path):
    store = mc.StoreLocation.DIRECTORY(path=str(tmp_path / "store"))
    biometric = SoftBiometric()
    settings = mc.MasterControllerConfig(server_url=idp_url, store=store, biometric_prompt="Unlock (pytest)")
    controller = mc.MasterController(settings, biometric_key_provider=biometric)
    run(controller.post_event(RequestEvent.START_EVENT(StartEvent())))
    enrolled = run(
        controller.post_event(
            RequestEvent.ENROLL_ANONYMOUS_USER_EVENT(EnrollAnonymousUserEvent(tenant_id=TENANT, authentication_mode=AuthenticationMode.BIOMETRIC, client_id=ENROLLMENT_CLIENT))
        )
    )
    assert enrolled[0].info.status == StatusType.OK, enrolled[0].info.error_description
    assert len(biometric.keys) == 1

    restarted = run(controller.post_event(RequestEvent.RESTART_EVENT(RestartEvent())))
    assert restarted[0].sdk_state == SdkState.LOGIN_REQUIRED

    biometric.next_failure = mc.BiometricError.Cancelled()
    cancelled = run(controller.post_event(RequestEvent.OFFLINE_LOGIN_EVENT(OfflineLoginEvent())))
    assert cancelled[0].info.status == StatusType.USER_CANCEL, cancelled[0].info.error_description

    # A host bug (any exception) is a failed status, never a crash.
    biometric.next_failure = ValueError("host keystore bug")
    failed = run(controller.post_event(RequestEvent.OFFLINE_LOGIN_EVENT(OfflineLoginEvent())))
    assert failed[0].info.status != StatusType.OK

    logged_in = run(controller.post_event(RequestEvent.OFFLINE_LOGIN_EVENT(OfflineLoginEvent())))
    assert logged_in[0].info.status == StatusType.OK, logged_in[0].info.error_description
    assert "Unlock (pytest)" in biometric.prompts
    exchanged = run(controller.post_event(RequestEvent.EXCHANGE_IAM_TOKEN_EVENT(ExchangeIamTokenEvent(audience=AUDIENCE))))
    assert exchanged[0].info.status == StatusType.OK
    controller.shutdown()


class FixedKey(mc.KeyProvider):
    def wrapping_key(self):
        return bytes(32)


class FailingKey(mc.KeyProvider):
    def wrapping_key(self):
        raise RuntimeError("keystore locked")


def test_a_host_key_provider_wraps_the_store(idp_url, tmp_path):
    store = mc.StoreLocation.DIRECTORY(str(tmp_path / "store"))
    controller = mc.MasterController(config(idp_url, store), key_provider=FixedKey())
    run(controller.post_event(RequestEvent.START_EVENT(StartEvent())))
    enrolled = run(controller.post_event(
        RequestEvent.ENROLL_ANONYMOUS_USER_EVENT(EnrollAnonymousUserEvent(tenant_id=TENANT, authentication_mode=AuthenticationMode.NO, client_id=ENROLLMENT_CLIENT))))
    assert enrolled[0].info.status == StatusType.OK, enrolled[0].info.error_description
    controller.shutdown()
    # The host's key was used: no key file of our own beside the store.
    assert not (tmp_path / "store" / "store.key").exists()

    again = mc.MasterController(config(idp_url, store), key_provider=FixedKey())
    run(again.post_event(RequestEvent.START_EVENT(StartEvent())))
    logged_in = run(again.post_event(RequestEvent.OFFLINE_LOGIN_EVENT(OfflineLoginEvent())))
    assert logged_in[0].info.status == StatusType.OK, logged_in[0].info.error_description
    again.shutdown()

    locked = mc.MasterController(config(idp_url, store), key_provider=FailingKey())
    run(locked.post_event(RequestEvent.START_EVENT(StartEvent())))
    refused = run(locked.post_event(RequestEvent.OFFLINE_LOGIN_EVENT(OfflineLoginEvent())))
    assert refused[0].info.status != StatusType.OK
    assert "key" in refused[0].info.error_description
    locked.shutdown()
