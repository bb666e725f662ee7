package com.example.app

import uniffi.mc_events.AuthenticationMode
import uniffi.mc_events.EnrollAnonymousUserEvent
import uniffi.mc_events.Event
import uniffi.mc_events.ExchangeIamTokenEvent
import uniffi.mc_events.OfflineLoginEvent
import uniffi.mc_events.RequestEvent
import uniffi.mc_events.SdkState
import uniffi.mc_events.StartEvent
import uniffi.mc_events.StatusType
import uniffi.mc_runtime.MasterController
import uniffi.mc_runtime.eventStatus

/**
 * The flow of the vendor's "Anonymous Enrollment" page, from a coroutine: StartEvent tells
 * whether activation is required; then EnrollAnonymousUserEvent (first launch) or
 * OfflineLoginEvent (later launches: sdkState == LOGIN_REQUIRED); then ExchangeIamTokenEvent
 * for every authentication operation. Returns the IAM access token, or null with the failing
 * result event handed to [onFailure].
 */
suspend fun obtainIamAccessToken(
    masterController: MasterController,
    tenantId: String,
    clientId: String,
    audience: String,
    onFailure: (Event) -> Unit,
): String? {
    val started = masterController.postEvent(RequestEvent.StartEvent(StartEvent()))
    val state = when (started) {
        is Event.StartResultEvent -> started.v1.sdkState
        else -> return null.also { onFailure(started) }
    }
    val activated = when (state) {
        SdkState.ACTIVATION_REQUIRED ->
            masterController.postEvent(
                RequestEvent.EnrollAnonymousUserEvent(EnrollAnonymousUserEvent(tenantId, AuthenticationMode.NO, clientId)),
            )
        SdkState.LOGIN_REQUIRED -> masterController.postEvent(RequestEvent.OfflineLoginEvent(OfflineLoginEvent()))
        else -> started
    }
    if (eventStatus(activated) != StatusType.OK) {
        onFailure(activated)
        return null
    }
    val exchanged = masterController.postEvent(RequestEvent.ExchangeIamTokenEvent(ExchangeIamTokenEvent(audience)))
    if (exchanged is Event.ExchangeIamTokenResultEvent && exchanged.v1.info.status == StatusType.OK) {
        return exchanged.v1.token
    }
    onFailure(exchanged)
    return null
}
