package com.example.app

import uniffi.mc_events.Event
import uniffi.mc_events.ResultInfo
import uniffi.mc_runtime.EventListener
import uniffi.mc_runtime.SynchronousEventHandler

/**
 * The vendor's note on listeners: "make sure your onEventReceived handles the result event;
 * don't forget to register your listener with addEventListener(yourEventListenerImpl)".
 *
 * Register with `masterController.addEventListener(EnrollmentEventListener(...))` and keep the
 * returned `ListenerRegistration` to `remove()` it. `onEventReceived` runs on a thread of its
 * own for this listener (never the UI thread, never the poster's): switch to the main thread
 * before touching views. An exception thrown here is caught and logged by the runtime; the
 * listener keeps receiving later events.
 */
class EnrollmentEventListener(
    private val onEnrollmentResult: (ResultInfo) -> Unit,
    private val onTokenClaims: (Map<String, String>) -> Unit = {},
) : EventListener {
    override fun onEventReceived(event: Event) {
        when (event) {
            // The result of EnrollAnonymousUserEvent (also of EnableAuthenticationModeEvent).
            is Event.StatusResultEvent -> onEnrollmentResult(event.v1.info)
            // Pushed after every login, enrollment included: the device token's claims.
            is Event.LoginTokenClaimsAvailableEvent -> onTokenClaims(event.v1.claims)
            else -> Unit
        }
    }
}

/**
 * The vendor's `SynchronousEventHandler.executeEvent`: receives only the events the runtime
 * pushes on its own (StartLoginEvent, ServerConnectionEvent, LoginTokenClaimsAvailableEvent,
 * IdpLoginRequiredEvent, warnings), never results. Register with
 * `masterController.addSynchronousEventHandler(PushedEventHandler(...))`.
 */
class PushedEventHandler(private val onPushed: (Event) -> Unit) : SynchronousEventHandler {
    override fun executeEvent(event: Event) {
        onPushed(event)
    }
}
