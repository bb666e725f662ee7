package mcruntime.test

import com.example.app.AnonymousEnrollment
import com.example.app.EnrollmentEventListener
import com.example.app.McEventHandler
import com.example.app.PushedEventHandler
import com.example.app.obtainIamAccessToken
import java.nio.file.Path
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlin.test.fail
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.mc_events.AuthenticationMode
import uniffi.mc_events.Event
import uniffi.mc_events.RequestEvent
import uniffi.mc_events.ResultInfo
import uniffi.mc_events.StartEvent
import uniffi.mc_events.StatusType
import uniffi.mc_runtime.MasterController
import uniffi.mc_runtime.MasterControllerConfig
import uniffi.mc_runtime.StoreLocation

/** The files in bindings/kotlin/examples, run for real against the dev IDP. */
class EnrollmentExamplesTest {
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
    }

    private fun controller(store: Path) = MasterController(
        MasterControllerConfig(serverUrl = idp.url, store = StoreLocation.Directory(store.toString())),
    )

    @Test
    fun `triggerEnrollAnonymousUserEvent with then, a listener and a synchronous handler`(@TempDir store: Path) {
        val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
        try {
            controller(store).use { masterController ->
                val fromListener = CompletableFuture<ResultInfo>()
                val claims = CompletableFuture<Map<String, String>>()
                val registration = masterController.addEventListener(
                    EnrollmentEventListener(
                        onEnrollmentResult = { fromListener.complete(it) },
                        onTokenClaims = { claims.complete(it) },
                    ),
                )
                val pushed = CopyOnWriteArrayList<Event>()
                val handlerRegistration = masterController.addSynchronousEventHandler(PushedEventHandler { pushed.add(it) })
                runBlocking { masterController.postEvent(RequestEvent.StartEvent(StartEvent())) }

                val fromThen = CompletableFuture<Event>()
                AnonymousEnrollment(McEventHandler(masterController, scope)) { fromThen.complete(it) }
                    .triggerEnrollAnonymousUserEvent(AuthenticationMode.NO, DevIdp.CLIENT, DevIdp.TENANT)

                val result = fromThen.get(20, TimeUnit.SECONDS)
                assertIs<Event.StatusResultEvent>(result)
                assertEquals(StatusType.OK, result.v1.info.status, result.v1.info.errorDescription)
                assertEquals(result.v1.info, fromListener.get(20, TimeUnit.SECONDS), "the listener got the same result")
                assertNotNull(claims.get(20, TimeUnit.SECONDS)["sub"])
                // The synchronous handler sees pushed events only, never results.
                val deadline = System.nanoTime() + 20_000_000_000L
                while (pushed.none { it is Event.LoginTokenClaimsAvailableEvent } && System.nanoTime() < deadline) {
                    Thread.sleep(5)
                }
                assertTrue(pushed.any { it is Event.LoginTokenClaimsAvailableEvent }, "$pushed")
                assertTrue(pushed.none { it is Event.StatusResultEvent || it is Event.StartResultEvent }, "$pushed")
                assertTrue(registration.remove())
                assertTrue(handlerRegistration.remove())
            }
        } finally {
            scope.cancel()
        }
    }

    @Test
    fun `the enrollment flow enrolls on first launch and logs in offline on the next`(@TempDir store: Path) = runBlocking {
        val firstLaunch = controller(store).use { masterController ->
            obtainIamAccessToken(masterController, DevIdp.TENANT, DevIdp.CLIENT, DevIdp.AUDIENCE) { fail("first launch: $it") }
        }
        assertNotNull(firstLaunch)
        // A new controller on the same store: sdkState LOGIN_REQUIRED, so the flow logs in offline.
        val nextLaunch = controller(store).use { masterController ->
            obtainIamAccessToken(masterController, DevIdp.TENANT, DevIdp.CLIENT, DevIdp.AUDIENCE) { fail("next launch: $it") }
        }
        assertNotNull(nextLaunch)
        assertTrue(firstLaunch.startsWith("ey") && nextLaunch.startsWith("ey"))
    }
}
