"""The whole device lifecycle through the Python bindings against the development IDP:
start, enroll, exchange, an HTTP call with the IAM token, restart, offline login after a
process-style restart, delete; with typed, JSON and synchronous listeners."""

import json

import mc_runtime as mc
# The event catalog's own types (mc-events, UniFFI namespace mc_events).
from mc_runtime.mc_events import (
    AuthenticationMode,
    CreateHttpCommonRequest,
    DeleteUserEvent,
    EnrollAnonymousUserEvent,
    Event,
    ExchangeIamTokenEvent,
    GetInformationEvent,
    GetStateEvent,
    HttpCommonStatus,
    HttpMethod,
    NextAction,
    OfflineLoginEvent,
    RequestEvent,
    RestartEvent,
    SdkState,
    StartEvent,
    StatusType,
)

from conftest import (
    AUDIENCE,
    ENROLLMENT_CLIENT,
    TENANT,
    RecordingHandler,
    RecordingJsonListener,
    RecordingListener,
    answers,
    config,
    run,
)


def ok(event):
    assert mc.event_status(event) == StatusType.OK, (
        mc.event_type_name(event),
        getattr(getattr(event[0], "info", None), "error_description", None),
    )
    return event


def test_lifecycle_with_listeners(idp_url, tmp_path):
    store = mc.StoreLocation.DIRECTORY(path=str(tmp_path / "store"))
    controller = mc.MasterController(config(idp_url, store))
    listener = RecordingListener()
    handler = RecordingHandler()
    json_listener = RecordingJsonListener()
    registration = controller.add_event_listener(listener)
    # Kept: dropping a registration removes its listener.
    handler_registration = controller.add_synchronous_event_handler(handler)
    json_registration = controller.add_json_event_listener(json_listener)

    started = ok(run(controller.post_event(RequestEvent.START_EVENT(StartEvent(app_name="pytest")))))
    assert isinstance(started, Event.START_RESULT_EVENT)
    assert started[0].sdk_state == SdkState.ACTIVATION_REQUIRED

    # As the vendor's Kotlin: postEvent(EnrollAnonymousUserEvent(tenantId, AuthenticationMode.NO, clientId))
    enrolled = ok(
        run(
            controller.post_event(
                RequestEvent.ENROLL_ANONYMOUS_USER_EVENT(EnrollAnonymousUserEvent(tenant_id=TENANT, authentication_mode=AuthenticationMode.NO, client_id=ENROLLMENT_CLIENT))
            )
        )
    )
    assert isinstance(enrolled, Event.STATUS_RESULT_EVENT)
    request_id = enrolled[0].info.request_id
    assert request_id
    # The listener gets the same result; the synchronous handler gets only pushed events.
    seen = listener.recorder.wait_for(answers(request_id))
    assert seen == enrolled
    handler.recorder.wait_for(lambda e: isinstance(e, Event.LOGIN_TOKEN_CLAIMS_AVAILABLE_EVENT))
    json_listener.recorder.wait_for(lambda text: json.loads(text).get("requestId") == request_id)

    exchanged = ok(run(controller.post_event(RequestEvent.EXCHANGE_IAM_TOKEN_EVENT(ExchangeIamTokenEvent(audience=AUDIENCE)))))
    assert isinstance(exchanged, Event.EXCHANGE_IAM_TOKEN_RESULT_EVENT)
    assert exchanged[0].audience == AUDIENCE
    assert exchanged[0].token and exchanged[0].token.count(".") == 2
    assert exchanged[0].expires_at > 0

    echo = run(
        controller.post_event(
            RequestEvent.CREATE_HTTP_COMMON_REQUEST(CreateHttpCommonRequest(
                full_url=f"{idp_url}/demo/echo",
                method=HttpMethod.POST,
                content='{"hello":"world"}',
                content_type="application/json",
                audience=AUDIENCE,
                http_headers={},
            ))
        )
    )
    assert isinstance(echo, Event.CREATE_HTTP_COMMON_RESULT_EVENT)
    assert echo[0].status == HttpCommonStatus.SUCCESS, echo[0].error_description
    assert echo[0].http_status == 200, echo[0].response
    assert mc.event_status(echo) == StatusType.OK
    assert isinstance(echo[0].response, bytes) and len(echo[0].response) > 0

    restarted = ok(run(controller.post_event(RequestEvent.RESTART_EVENT(RestartEvent()))))
    assert restarted[0].sdk_state == SdkState.LOGIN_REQUIRED
    # After a restart the runtime pushes StartLoginEvent naming the user to log in.
    handler.recorder.wait_for(lambda e: isinstance(e, Event.START_LOGIN_EVENT))

    # The app is closed and opened again: a new controller on the same store.
    assert registration.remove() is True
    assert registration.remove() is False
    controller.shutdown()
    del controller

    controller = mc.MasterController(config(idp_url, store))
    listener2 = RecordingListener()
    registration2 = controller.add_event_listener(listener2)
    started = ok(run(controller.post_event(RequestEvent.START_EVENT(StartEvent()))))
    assert started[0].sdk_state == SdkState.LOGIN_REQUIRED
    assert len(started[0].user_details_list) == 1
    user = started[0].user_details_list[0].user_identifier
    assert user.tenant_id == TENANT

    logged_in = ok(run(controller.post_event(RequestEvent.OFFLINE_LOGIN_EVENT(OfflineLoginEvent()))))
    assert isinstance(logged_in, Event.OFFLINE_LOGIN_RESULT_EVENT)
    state = ok(run(controller.post_event(RequestEvent.GET_STATE_EVENT(GetStateEvent()))))
    assert state[0].sdk_state == SdkState.LOGGED_IN
    info = ok(run(controller.post_event(RequestEvent.GET_INFORMATION_EVENT(GetInformationEvent()))))
    assert info[0].logged_in_user == user
    assert info[0].iam_configuration_data.client_id == ENROLLMENT_CLIENT

    deleted = ok(run(controller.post_event(RequestEvent.DELETE_USER_EVENT(DeleteUserEvent(user_identifier=user)))))
    assert isinstance(deleted, Event.DELETE_USER_RESULT_EVENT)
    assert deleted[0].sdk_state == SdkState.ACTIVATION_REQUIRED
    assert deleted[0].user_list == []
    listener2.recorder.wait_for(answers(deleted[0].info.request_id))

    # The first listener was removed: it saw nothing of the second controller's requests.
    assert all(mc.event_request_id(e) != deleted[0].info.request_id for e in listener.recorder.events)
    controller.shutdown()


def test_refusals_are_statuses_not_exceptions(memory_controller):
    controller = memory_controller
    # Not started yet: an InvalidStateEvent answers, nothing is raised.
    refused = run(controller.post_event(RequestEvent.EXCHANGE_IAM_TOKEN_EVENT(ExchangeIamTokenEvent(audience=AUDIENCE))))
    assert isinstance(refused, Event.INVALID_STATE_EVENT)
    assert refused[0].request_type == "ExchangeIamTokenEvent"
    assert mc.event_status(refused) == StatusType.INVALID_STATE

    ok(run(controller.post_event(RequestEvent.START_EVENT(StartEvent()))))
    invalid = run(
        controller.post_event(RequestEvent.ENROLL_ANONYMOUS_USER_EVENT(EnrollAnonymousUserEvent(tenant_id="", authentication_mode=AuthenticationMode.NO, client_id=ENROLLMENT_CLIENT)))
    )
    assert mc.event_status(invalid) == StatusType.INVALID_PARAMETER
    assert "tenantId" in invalid[0].info.error_description
    assert invalid[0].info.error_code == 100000001
    # What to do next crosses as data: fix the named field.
    assert invalid[0].info.next_action == NextAction.FIX_FIELD(field="tenantId")


def test_timeout_answers_timeout_and_the_real_result_still_reaches_listeners(memory_controller):
    controller = memory_controller
    listener = RecordingListener()
    registration = controller.add_event_listener(listener)
    ok(run(controller.post_event(RequestEvent.START_EVENT(StartEvent()))))
    # Enrollment takes several HTTP round trips: 1 ms is too short to wait for it.
    waited = run(
        controller.post_event_with_timeout(
            RequestEvent.ENROLL_ANONYMOUS_USER_EVENT(EnrollAnonymousUserEvent(tenant_id=TENANT, authentication_mode=AuthenticationMode.NO, client_id=ENROLLMENT_CLIENT)), 1
        )
    )
    assert isinstance(waited, Event.STATUS_RESULT_EVENT)
    assert waited[0].info.status == StatusType.TIMEOUT
    real = listener.recorder.wait_for(
        lambda e: mc.event_request_id(e) == waited[0].info.request_id and mc.event_status(e) != StatusType.TIMEOUT
    )
    assert mc.event_status(real) == StatusType.OK


def test_forward_event_result_reaches_listeners(memory_controller):
    controller = memory_controller
    listener = RecordingListener()
    registration = controller.add_event_listener(listener)
    request_id = controller.forward_event(RequestEvent.START_EVENT(StartEvent()))
    assert request_id
    result = listener.recorder.wait_for(answers(request_id))
    assert isinstance(result, Event.START_RESULT_EVENT)
    assert result[0].info.status == StatusType.OK


def test_invalid_configuration_raises_a_typed_error(idp_url):
    try:
        mc.MasterController(mc.MasterControllerConfig(server_url="  ", store=mc.StoreLocation.MEMORY()))
    except mc.ControllerError.InvalidConfiguration as error:
        assert "serverUrl" in str(error)
    else:
        raise AssertionError("an empty serverUrl was accepted")
