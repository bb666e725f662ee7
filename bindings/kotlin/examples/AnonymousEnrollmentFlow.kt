package com.example.app

import uniffi.mc_runtime.AuthenticationMode
import uniffi.mc_runtime.Event
import uniffi.mc_runtime.MasterController
import uniffi.mc_runtime.RequestEvent.EnrollAnonymousUserEvent
import uniffi.mc_runtime.RequestEvent.ExchangeIamTokenEvent
import uniffi.mc_runtime.RequestEvent.OfflineLoginEvent
import uniffi.mc_runtime.RequestEvent.StartEvent
import uniffi.mc_runtime.SdkState
import uniffi.mc_runtime.eventStatus
import uniffi.mc_runtime.StatusType

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
    val started = masterController.postEvent(StartEvent())
    val state = when (started) {
        is Event.StartResultEvent -> started.sdkState
        else -> return null.also { onFailure(started) }
    }
    val activated = when (state) {
        SdkState.ACTIVATION_REQUIRED ->
            masterController.postEvent(EnrollAnonymousUserEvent(tenantId, AuthenticationMode.NO, clientId))
        SdkState.LOGIN_REQUIRED -> masterController.postEvent(OfflineLoginEvent())
        else -> started
    }
    if (eventStatus(activated) != StatusType.OK) {
        onFailure(activated)
        return null
    }
    val exchanged = masterController.postEvent(ExchangeIamTokenEvent(audience))
    if (exchanged is Event.ExchangeIamTokenResultEvent && exchanged.info.status == StatusType.OK) {
        return exchanged.token
    }
    onFailure(exchanged)
    return null
}
