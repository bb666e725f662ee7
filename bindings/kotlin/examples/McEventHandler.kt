package com.example.app

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Deferred
import kotlinx.coroutines.Job
import kotlinx.coroutines.async
import kotlinx.coroutines.launch
import uniffi.mc_events.Event
import uniffi.mc_events.RequestEvent
import uniffi.mc_runtime.MasterController

/**
 * The `mcEventHandler` of the vendor's snippets: `postEvent(event).then { result -> ... }`.
 *
 * `MasterController.postEvent` is a suspend function; this adapter starts it at once in the
 * app's scope (on Android: `lifecycleScope` or `viewModelScope`, so leaving the screen cancels
 * the wait, never the request) and runs the `then` block with the result event. Code that is
 * already in a coroutine calls `masterController.postEvent(event)` directly.
 */
class McEventHandler(
    private val masterController: MasterController,
    private val scope: CoroutineScope,
) {
    fun postEvent(event: RequestEvent): PostedEvent =
        PostedEvent(scope, scope.async { masterController.postEvent(event) })
}

/** A posted request whose result event is on its way. */
class PostedEvent internal constructor(
    private val scope: CoroutineScope,
    private val result: Deferred<Event>,
) {
    /** Runs [handle] with the result event, in the handler's scope. */
    fun then(handle: (Event) -> Unit): Job = scope.launch { handle(result.await()) }
}
