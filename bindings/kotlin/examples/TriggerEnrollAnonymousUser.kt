package com.example.app

import uniffi.mc_events.AuthenticationMode
import uniffi.mc_events.EnrollAnonymousUserEvent
import uniffi.mc_events.Event
import uniffi.mc_events.RequestEvent

/**
 * The vendor's "Triggering EnrollAnonymousUserEvent (Kotlin)" snippet, line for line, on
 * mc-runtime. Post it when `sdkState == ACTIVATION_REQUIRED`; the result is a
 * `StatusResultEvent` whose `v1.info.status` is `OK` once the device is enrolled and logged in.
 *
 * Run for real by `EnrollmentExamplesTest` in src/test/kotlin.
 */
class AnonymousEnrollment(
    private val mcEventHandler: McEventHandler?,
    private val onResult: (Event) -> Unit,
) {
    fun triggerEnrollAnonymousUserEvent(authMode: AuthenticationMode, clientId: String, tenantId: String) {
        val enrollAnonymousUserEvent = RequestEvent.EnrollAnonymousUserEvent(EnrollAnonymousUserEvent(tenantId, authMode, clientId))
        mcEventHandler?.postEvent(enrollAnonymousUserEvent)?.then {
            // handle result
            onResult(it)
        }
    }
}
