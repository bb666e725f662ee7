package mcruntime.test

import java.nio.file.Path
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.mc_events.AuthenticationMode
import uniffi.mc_events.CreateHttpCommonRequest
import uniffi.mc_events.DeleteUserEvent
import uniffi.mc_events.EnrollAnonymousUserEvent
import uniffi.mc_events.Event
import uniffi.mc_events.ExchangeIamTokenEvent
import uniffi.mc_events.GetInformationEvent
import uniffi.mc_events.GetStateEvent
import uniffi.mc_events.HttpCommonStatus
import uniffi.mc_events.HttpMethod
import uniffi.mc_events.NextAction
import uniffi.mc_events.OfflineLoginEvent
import uniffi.mc_events.RequestEvent
import uniffi.mc_events.RestartEvent
import uniffi.mc_events.SdkState
import uniffi.mc_events.StartEvent
import uniffi.mc_events.StatusType
import uniffi.mc_runtime.EventListener
import uniffi.mc_runtime.MasterController
import uniffi.mc_runtime.MasterControllerConfig
import uniffi.mc_runtime.StoreLocation
import uniffi.mc_runtime.eventRequestId

/** Every event a listener received, with a wait for the one a test expects. */
class RecordingListener : EventListener {
    val events = CopyOnWriteArrayList<Event>()
    val threads = CopyOnWriteArrayList<String>()

    override fun onEventReceived(event: Event) {
        threads.add(Thread.currentThread().name)
        events.add(event)
    }

    fun await(what: String, matches: (Event) -> Boolean): Event {
        val deadline = System.nanoTime() + 20_000_000_000L
        while (System.nanoTime() < deadline) {
            events.firstOrNull(matches)?.let { return it }
            Thread.sleep(5)
        }
        throw AssertionError("no $what among $events")
    }
}

const val WAIT_MS = 20_000L

class LifecycleTest {
    companion object {
        private lateinit var idp: DevIdp

        @BeforeAll
        @JvmStatic
        fun startIdp() {
            idp = DevIdp.start()
        }

        @AfterAll
        @JvmStatic
        fun stopIdp() {
            idp.close()
        }

        fun controller(store: Path): MasterController = MasterController(
            MasterControllerConfig(
                serverUrl = idp.url,
                store = StoreLocation.Directory(store.toString()),
                audienceOrigins = mapOf(DevIdp.AUDIENCE to listOf(idp.url)),
            ),
        )
    }

    @Test
    fun `anonymous lifecycle with postEvent and a listener, as an Android app does it`(@TempDir store: Path) = runBlocking {
        withTimeout(60_000) {
            controller(store).use { masterController ->
                val postingThread = Thread.currentThread().name
                val listener = RecordingListener()
                val registration = masterController.addEventListener(listener)

                val started = masterController.postEvent(RequestEvent.StartEvent(StartEvent(appName = "kotlin-jvm-test")))
                assertIs<Event.StartResultEvent>(started)
                assertEquals(StatusType.OK, started.v1.info.status)
                assertEquals(SdkState.ACTIVATION_REQUIRED, started.v1.sdkState)

                // The seed's call, verbatim in shape.
                val enrolled = masterController.postEvent(
                    RequestEvent.EnrollAnonymousUserEvent(
                        EnrollAnonymousUserEvent(DevIdp.TENANT, AuthenticationMode.NO, DevIdp.CLIENT),
                    ),
                )
                assertIs<Event.StatusResultEvent>(enrolled)
                assertEquals(StatusType.OK, enrolled.v1.info.status, enrolled.v1.info.errorDescription)
                assertFalse(enrolled.v1.info.hasErrorOccurred)
                assertEquals(0u, enrolled.v1.info.errorCode)
                assertEquals(null, enrolled.v1.info.nextAction, "an OK result says nothing to do next")

                // The listener sees the same result (same requestId) and the pushed claims.
                val requestId = assertNotNull(enrolled.v1.info.requestId)
                listener.await("the enrollment's result") {
                    it is Event.StatusResultEvent && eventRequestId(it) == requestId
                }
                val claims = listener.await("LoginTokenClaimsAvailableEvent") { it is Event.LoginTokenClaimsAvailableEvent }
                assertIs<Event.LoginTokenClaimsAvailableEvent>(claims)
                val sub = assertNotNull(claims.v1.claims["sub"])

                val info = masterController.postEvent(RequestEvent.GetInformationEvent(GetInformationEvent()))
                assertIs<Event.GetInformationResultEvent>(info)
                assertEquals(SdkState.LOGGED_IN, info.v1.sdkState)
                assertEquals(DevIdp.TENANT, info.v1.loggedInUser?.tenantId)
                assertEquals(DevIdp.CLIENT, info.v1.iamConfigurationData?.clientId)

                val exchanged = masterController.postEvent(RequestEvent.ExchangeIamTokenEvent(ExchangeIamTokenEvent(DevIdp.AUDIENCE)))
                assertIs<Event.ExchangeIamTokenResultEvent>(exchanged)
                assertEquals(StatusType.OK, exchanged.v1.info.status, exchanged.v1.info.errorDescription)
                assertEquals(DevIdp.AUDIENCE, exchanged.v1.audience)
                assertTrue(assertNotNull(exchanged.v1.token).count { it == '.' } == 2, "a JWT")

                // An authenticated call through the runtime: the echo resource sees the device.
                val http = masterController.postEvent(
                    RequestEvent.CreateHttpCommonRequest(
                        CreateHttpCommonRequest("${idp.url}/demo/echo", HttpMethod.POST, content = "hello",
                            contentType = "text/plain", httpHeaders = mapOf(), audience = DevIdp.AUDIENCE),
                    ),
                )
                assertIs<Event.CreateHttpCommonResultEvent>(http)
                assertEquals(HttpCommonStatus.SUCCESS, http.v1.status, http.v1.errorDescription)
                assertEquals(200.toUShort(), http.v1.httpStatus)
                val echo = String(http.v1.response)
                assertTrue(echo.contains("\"sub\":\"$sub\""), echo)
                assertTrue(echo.contains("\"body\":\"hello\""), echo)

                // Errors are result statuses, never exceptions.
                val invalid = masterController.postJson("""{"type": "EnrollAnonymousUserEvent", "tenantId": 7}""")
                assertTrue(invalid.contains("\"status\":\"INVALID_PARAMETER\""), invalid)
                assertTrue(invalid.contains("tenantId"), invalid)
                val refused = masterController.postEventWithTimeout(
                    RequestEvent.ExchangeIamTokenEvent(ExchangeIamTokenEvent("no-such-api")), 20_000u,
                )
                assertIs<Event.ExchangeIamTokenResultEvent>(refused)
                assertEquals(StatusType.INVALID_PARAMETER, refused.v1.info.status, refused.v1.info.errorDescription)
                assertTrue(refused.v1.info.hasErrorOccurred)
                // What to do next crosses as data: fix the audience.
                assertEquals(NextAction.FixField("audience"), refused.v1.info.nextAction)

                val restarted = masterController.postEvent(RequestEvent.RestartEvent(RestartEvent()))
                assertIs<Event.RestartResultEvent>(restarted)
                assertEquals(SdkState.LOGIN_REQUIRED, restarted.v1.sdkState)
                val login = masterController.postEvent(RequestEvent.OfflineLoginEvent(OfflineLoginEvent()))
                assertIs<Event.OfflineLoginResultEvent>(login)
                assertEquals(StatusType.OK, login.v1.info.status, login.v1.info.errorDescription)

                val deleted = masterController.postEvent(RequestEvent.DeleteUserEvent(DeleteUserEvent()))
                assertIs<Event.DeleteUserResultEvent>(deleted)
                assertEquals(StatusType.OK, deleted.v1.info.status, deleted.v1.info.errorDescription)
                assertEquals(SdkState.ACTIVATION_REQUIRED, deleted.v1.sdkState)
                assertTrue(deleted.v1.userList.isEmpty())

                // Listeners run on the runtime's threads (attached to the JVM by JNA), never on
                // the thread that posted.
                assertTrue(listener.threads.none { it == postingThread }, "${listener.threads}")

                // After remove(), nothing more arrives. (Wait for the delete's result first: an
                // event already queued for the listener when remove() runs may still be delivered
                // by mc-runtime today, see docs/bindings.md.)
                listener.await("the delete's result") { it is Event.DeleteUserResultEvent }
                Thread.sleep(50)
                assertTrue(registration.remove())
                assertFalse(registration.remove(), "a second remove reports false")
                val seen = listener.events.size
                masterController.postEvent(RequestEvent.GetStateEvent(GetStateEvent()))
                Thread.sleep(200)
                assertEquals(seen, listener.events.size, "a removed listener was called")
            }
        }
    }

    @Test
    fun `a listener that throws does not break the runtime or the other listeners`(@TempDir store: Path) = runBlocking {
        withTimeout(60_000) {
            controller(store).use { masterController ->
                val calls = AtomicInteger()
                // Registrations are kept: dropping one (close() or garbage collection) removes
                // its listener.
                val throwing = masterController.addEventListener(object : EventListener {
                    override fun onEventReceived(event: Event) {
                        calls.incrementAndGet()
                        throw IllegalStateException("a buggy app listener")
                    }
                })
                val healthy = RecordingListener()
                val healthyRegistration = masterController.addEventListener(healthy)
                val started = masterController.postEvent(RequestEvent.StartEvent(StartEvent()))
                assertEquals(SdkState.ACTIVATION_REQUIRED, (started as Event.StartResultEvent).v1.sdkState)
                repeat(3) {
                    val state = masterController.postEvent(RequestEvent.GetStateEvent(GetStateEvent()))
                    assertIs<Event.GetStateResultEvent>(state)
                    assertEquals(StatusType.OK, state.v1.info.status)
                }
                healthy.await("4 results") { healthy.events.size >= 4 }
                val deadline = System.nanoTime() + 20_000_000_000L
                while (calls.get() < 4 && System.nanoTime() < deadline) Thread.sleep(5)
                assertEquals(4, calls.get(), "the throwing listener keeps receiving events")
                assertTrue(throwing.remove())
                assertTrue(healthyRegistration.remove())
            }
        }
    }
}
