package mcruntime.test

import java.net.URI
import java.net.URLDecoder
import java.net.URLEncoder
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.Path
import java.time.Duration
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertNotEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.mc_events.AuthenticationMode
import uniffi.mc_events.ClearBehavior
import uniffi.mc_events.ClearIamTokenCacheEvent
import uniffi.mc_events.CreateAuthorizationRequestEvent
import uniffi.mc_events.Event
import uniffi.mc_events.ExchangeIamTokenEvent
import uniffi.mc_events.GetInformationEvent
import uniffi.mc_events.GetStateEvent
import uniffi.mc_events.OfflineLoginEvent
import uniffi.mc_events.RequestEvent
import uniffi.mc_events.RestartEvent
import uniffi.mc_events.SdkState
import uniffi.mc_events.SetAuthorisationCodeEvent
import uniffi.mc_events.StartEvent
import uniffi.mc_events.StatusType
import uniffi.mc_runtime.MasterController
import uniffi.mc_runtime.MasterControllerConfig
import uniffi.mc_runtime.StoreLocation

/**
 * An identified user through the Kotlin bindings against the development IDP, as an Android
 * app does it: CreateAuthorizationRequest, the IDP's login page (here posted by
 * java.net.http as a browser would, where the app opens a Custom Tab), the redirect URL handed
 * over with SetAuthorisationCode, exchange, offline login after a restart, logout. Mirrors
 * bindings/python/tests/test_identified.py.
 */
class IdentifiedLoginTest {
    companion object {
        // The dev IDP's public native client and default user (mc-devidp --help).
        const val CLIENT = "demo-app"
        const val REDIRECT_URI = "http://127.0.0.1/callback"
        const val USER = "demo"
        const val PASSWORD = "demo-password"
        const val ONE_TIME_CODE = "123456"
        /** The fixed `sub` of the dev IDP's default user (mc_devidp::DEMO_USER_SUB). */
        const val USER_SUB = "6f1c2a7e-3b9d-4c5e-8a1f-2d4b6c8e0a13"

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

    private suspend fun MasterController.start() {
        val started = postEvent(RequestEvent.StartEvent(StartEvent(appName = "kotlin-jvm-test")))
        assertIs<Event.StartResultEvent>(started)
        assertEquals(StatusType.OK, started.v1.info.status, started.v1.info.errorDescription)
    }

    private suspend fun MasterController.authorize(): Event.CreateAuthorizationRequestResultEvent {
        val created = postEvent(
            RequestEvent.CreateAuthorizationRequestEvent(
                CreateAuthorizationRequestEvent(tenantId = DevIdp.TENANT, clientId = CLIENT, redirectUri = REDIRECT_URI),
            ),
        )
        assertIs<Event.CreateAuthorizationRequestResultEvent>(created)
        assertEquals(StatusType.OK, created.v1.info.status, created.v1.info.errorDescription)
        assertTrue(created.v1.state.isNotEmpty())
        return created
    }

    private suspend fun MasterController.setCode(redirectUrl: String): Event.StatusResultEvent {
        val answer = postEvent(
            RequestEvent.SetAuthorisationCodeEvent(
                SetAuthorisationCodeEvent(
                    tenantId = DevIdp.TENANT,
                    clientId = CLIENT,
                    authenticationMode = AuthenticationMode.NO,
                    redirectUrl = redirectUrl,
                ),
            ),
        )
        assertIs<Event.StatusResultEvent>(answer)
        return answer
    }

    private suspend fun MasterController.information(): Event.GetInformationResultEvent {
        val information = postEvent(RequestEvent.GetInformationEvent(GetInformationEvent()))
        assertIs<Event.GetInformationResultEvent>(information)
        return information
    }

    private suspend fun MasterController.restart() {
        val restarted = postEvent(RequestEvent.RestartEvent(RestartEvent()))
        assertIs<Event.RestartResultEvent>(restarted)
        assertEquals(StatusType.OK, restarted.v1.info.status, restarted.v1.info.errorDescription)
    }

    private suspend fun MasterController.offlineLogin(): Event.OfflineLoginResultEvent {
        val login = postEvent(RequestEvent.OfflineLoginEvent(OfflineLoginEvent()))
        assertIs<Event.OfflineLoginResultEvent>(login)
        return login
    }

    @Test
    fun `identified login, exchange, offline login after a restart, logout`(@TempDir store: Path) = runBlocking {
        withTimeout(60_000) {
            controller(store).use { masterController ->
                val listener = RecordingListener()
                masterController.addEventListener(listener).use {
                    masterController.start()
                    val created = masterController.authorize()
                    val redirectUrl = BrowserLogin.logIn(created.v1.authorizationUrl)
                    assertTrue(redirectUrl.startsWith("$REDIRECT_URI?"), redirectUrl)
                    assertEquals(created.v1.state, BrowserLogin.query(redirectUrl)["state"], redirectUrl)

                    val loggedIn = masterController.setCode(redirectUrl)
                    assertEquals(StatusType.OK, loggedIn.v1.info.status, loggedIn.v1.info.errorDescription)
                    assertNull(loggedIn.v1.replacedUserIdentifier, "no anonymous user was replaced")
                    // The same redirect again: its state is used up, and the user stays who it was.
                    val replayed = masterController.setCode(redirectUrl)
                    assertEquals(StatusType.INVALID_PARAMETER, replayed.v1.info.status)

                    // LOGGED_IN as the ID token's subject; its claims pushed to listeners.
                    val information = masterController.information()
                    assertEquals(SdkState.LOGGED_IN, information.v1.sdkState)
                    val user = assertNotNull(information.v1.loggedInUser)
                    assertEquals(DevIdp.TENANT, user.tenantId)
                    assertEquals(USER_SUB, user.userId, "userId is the ID token's sub")
                    val claims = listener.await("the user's claims") {
                        it is Event.LoginTokenClaimsAvailableEvent && it.v1.claims["sub"] == USER_SUB
                    }
                    assertIs<Event.LoginTokenClaimsAvailableEvent>(claims)

                    val exchanged = masterController.postEvent(
                        RequestEvent.ExchangeIamTokenEvent(ExchangeIamTokenEvent(DevIdp.AUDIENCE)),
                    )
                    assertIs<Event.ExchangeIamTokenResultEvent>(exchanged)
                    assertEquals(StatusType.OK, exchanged.v1.info.status, exchanged.v1.info.errorDescription)
                    val token = assertNotNull(exchanged.v1.token)
                    assertEquals(USER_SUB, jwtClaim(token, "sub"), "the audience token is the user's")

                    // A restart forgets the session; the stored refresh token logs the user in.
                    masterController.restart()
                    val offline = masterController.offlineLogin()
                    assertEquals(StatusType.OK, offline.v1.info.status, offline.v1.info.errorDescription)
                    assertEquals(USER_SUB, masterController.information().v1.loggedInUser?.userId)

                    // Logout as the MC-SDK does it: CLEAR_ALL, Restart; offline login is then refused.
                    val cleared = masterController.postEvent(
                        RequestEvent.ClearIamTokenCacheEvent(ClearIamTokenCacheEvent(clearBehavior = ClearBehavior.CLEAR_ALL)),
                    )
                    assertIs<Event.ClearIamTokenCacheResultEvent>(cleared)
                    assertEquals(StatusType.OK, cleared.v1.info.status, cleared.v1.info.errorDescription)
                    masterController.restart()
                    val refused = masterController.offlineLogin()
                    assertEquals(StatusType.NO_TOKEN_DATA_AVAILABLE, refused.v1.info.status, refused.v1.info.errorDescription)
                    assertNotEquals(SdkState.LOGGED_IN, masterController.information().v1.sdkState)
                }
            }
        }
    }

    @Test
    fun `a redirect with a forged state logs nobody in`(@TempDir store: Path) = runBlocking {
        withTimeout(60_000) {
            controller(store).use { masterController ->
                masterController.start()
                val created = masterController.authorize()
                val redirectUrl = BrowserLogin.logIn(created.v1.authorizationUrl)
                val forged = BrowserLogin.withQuery(redirectUrl, "state", "forged-state")
                val stateless = BrowserLogin.withQuery(redirectUrl, "state", null)
                for (hostile in listOf(forged, stateless)) {
                    val answer = masterController.setCode(hostile)
                    // The status and code the runtime gives for a state it did not issue
                    // (error_code::AUTHORIZATION_REQUEST_UNKNOWN); what to do next: authorize again.
                    assertEquals(StatusType.INVALID_PARAMETER, answer.v1.info.status, hostile)
                    assertEquals(100_000_012u, answer.v1.info.errorCode, answer.v1.info.errorDescription)
                    assertTrue(answer.v1.info.hasErrorOccurred)
                    assertTrue(
                        assertNotNull(answer.v1.info.errorDescription).contains("CreateAuthorizationRequestEvent"),
                        answer.v1.info.errorDescription,
                    )
                    assertNull(masterController.information().v1.loggedInUser, "nobody is logged in")
                    val state = masterController.postEvent(RequestEvent.GetStateEvent(GetStateEvent()))
                    assertIs<Event.GetStateResultEvent>(state)
                    assertNotEquals(SdkState.LOGGED_IN, state.v1.sdkState)
                }
                // The refused ones used nothing up: the genuine redirect still logs the user in.
                val genuine = masterController.setCode(redirectUrl)
                assertEquals(StatusType.OK, genuine.v1.info.status, genuine.v1.info.errorDescription)
                assertEquals(USER_SUB, masterController.information().v1.loggedInUser?.userId)
            }
        }
    }

    /** One claim of a JWT's payload (no verification: the runtime verified it). */
    private fun jwtClaim(jwt: String, name: String): String? {
        val payload = String(java.util.Base64.getUrlDecoder().decode(jwt.split('.')[1]), UTF_8)
        return Regex(""""${Regex.escape(name)}"\s*:\s*"([^"]*)"""").find(payload)?.groupValues?.get(1)
    }
}

/**
 * The browser's part, as `mc_devidp::form_login` does it: GET the login page, post its one
 * form (hidden fields, user name, password, the one-time code when the page asks for it) back
 * to the same origin, and return the redirect's Location. Redirects are not followed: the
 * redirect URI is the app's, where nobody listens in this test.
 */
object BrowserLogin {
    private val http: HttpClient = HttpClient.newBuilder()
        .followRedirects(HttpClient.Redirect.NEVER)
        .connectTimeout(Duration.ofSeconds(10))
        .build()

    fun logIn(authorizationUrl: String): String {
        val pageUrl = URI.create(authorizationUrl)
        val page = http.send(
            HttpRequest.newBuilder(pageUrl).timeout(Duration.ofSeconds(10)).GET().build(),
            HttpResponse.BodyHandlers.ofString(),
        )
        check(page.statusCode() == 200) { "login page: ${page.statusCode()} ${page.body().take(500)}" }
        val form = checkNotNull(LoginForm.parse(page.body())) { "no form on the login page: ${page.body().take(500)}" }
        val action = pageUrl.resolve(form.action)
        // The password goes back to the origin that asked for it, nowhere else.
        check(action.scheme == pageUrl.scheme && action.host == pageUrl.host && action.port == pageUrl.port) {
            "the login form posts to another origin: $action"
        }
        val fields = form.hidden + listOf("username" to IdentifiedLoginTest.USER, "password" to IdentifiedLoginTest.PASSWORD) +
            (if (form.asksSecondFactor) listOf("otp" to IdentifiedLoginTest.ONE_TIME_CODE) else emptyList()) +
            listOf("action" to "login")
        val body = fields.joinToString("&") { (name, value) -> "${encode(name)}=${encode(value)}" }
        val answer = http.send(
            HttpRequest.newBuilder(action)
                .timeout(Duration.ofSeconds(10))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build(),
            HttpResponse.BodyHandlers.ofString(),
        )
        val location = answer.headers().firstValue("Location").orElse(null)
        check(answer.statusCode() in 300..399 && location != null) {
            "the login was not accepted: ${answer.statusCode()} ${answer.body().take(500)}"
        }
        return action.resolve(location).toString()
    }

    /** The query parameters of `url`, decoded (the last of a repeated name). */
    fun query(url: String): Map<String, String> =
        (URI.create(url).rawQuery ?: "").split('&').filter { it.isNotEmpty() }.associate { pair ->
            val (name, value) = pair.split('=', limit = 2).let { it[0] to it.getOrElse(1) { "" } }
            URLDecoder.decode(name, UTF_8) to URLDecoder.decode(value, UTF_8)
        }

    /** `url` with the parameter `name` set to `value`, or removed when `value` is null. */
    fun withQuery(url: String, name: String, value: String?): String {
        val uri = URI.create(url)
        val pairs = query(url).toMutableMap()
        if (value == null) pairs.remove(name) else pairs[name] = value
        val rawQuery = pairs.entries.joinToString("&") { "${encode(it.key)}=${encode(it.value)}" }
        return "${uri.scheme}://${uri.rawAuthority}${uri.rawPath}?$rawQuery"
    }

    private fun encode(text: String): String = URLEncoder.encode(text, UTF_8)

    /** The page's one `<form>`: where it posts, its hidden fields, whether it asks for a code. */
    class LoginForm(val action: String, val hidden: List<Pair<String, String>>, val asksSecondFactor: Boolean) {
        companion object {
            fun parse(html: String): LoginForm? {
                val start = html.indexOf("<form").takeIf { it >= 0 } ?: return null
                val end = html.indexOf("</form>", start).takeIf { it >= 0 } ?: html.length
                val formHtml = html.substring(start, end)
                val formTag = formHtml.substringBefore('>')
                val action = attribute(formTag, "action") ?: return null
                val hidden = mutableListOf<Pair<String, String>>()
                var asksSecondFactor = false
                for (input in formHtml.split("<input").drop(1)) {
                    val tag = input.substringBefore('>')
                    val name = attribute(tag, "name") ?: ""
                    if (attribute(tag, "type") == "hidden") {
                        hidden += name to (attribute(tag, "value") ?: "")
                    } else if (name == "otp") {
                        asksSecondFactor = true
                    }
                }
                return LoginForm(action, hidden, asksSecondFactor)
            }

            /** The value of ` name="…"` in a tag, entities decoded. */
            private fun attribute(tag: String, name: String): String? {
                val marker = " $name=\""
                val start = tag.indexOf(marker).takeIf { it >= 0 }?.plus(marker.length) ?: return null
                val end = tag.indexOf('"', start).takeIf { it >= 0 } ?: return null
                return tag.substring(start, end)
                    .replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"")
                    .replace("&#39;", "'").replace("&amp;", "&")
            }
        }
    }
}
