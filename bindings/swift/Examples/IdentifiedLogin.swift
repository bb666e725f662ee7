// An identified user's login from Swift (issue 10), through the generated API: the same steps
// as bindings/kotlin/src/test/kotlin/mcruntime/test/IdentifiedLoginTest.kt and
// bindings/python/tests/test_identified.py run against the development IDP.
//
//   CreateAuthorizationRequestEvent → the IDP's login page in ASWebAuthenticationSession →
//   SetAuthorisationCodeEvent with the callback URL → LOGGED_IN (userId = the ID token's sub)
//   → ExchangeIamTokenEvent → (app restart) RestartEvent + OfflineLoginEvent → logout:
//   ClearIamTokenCacheEvent(.clearAll) + RestartEvent.
//
// There is no Swift toolchain on the build machine: bindings/swift/check.sh checks that every
// generated type, case, field, label and function this file uses exists in the generated Swift
// (bindings/swift/check_example_api.py). The UI part (ASWebAuthenticationSession) is behind the
// `LoginPage` protocol; its implementation is in comments below, since it needs UIKit/AppKit.

import Foundation

// With the Swift package of docs/bindings.md the generated code is the module `McRuntime`.
#if canImport(McRuntime)
import McRuntime
#endif

/// Shows the IDP's login page and returns the URL the IDP redirected to (code, state, iss or
/// error). An app implements it with ASWebAuthenticationSession (RFC 8252: the system browser,
/// never a web view):
///
///     import AuthenticationServices
///
///     final class WebAuthenticationLoginPage: NSObject, LoginPage,
///         ASWebAuthenticationPresentationContextProviding {
///         func open(url: URL, callbackScheme: String) async throws -> URL {
///             try await withCheckedThrowingContinuation { continuation in
///                 let session = ASWebAuthenticationSession(
///                     url: url, callbackURLScheme: callbackScheme
///                 ) { callbackURL, error in
///                     if let callbackURL {
///                         continuation.resume(returning: callbackURL)
///                     } else {
///                         // ASWebAuthenticationSessionError.canceledLogin: the user closed it.
///                         continuation.resume(throwing: error ?? LoginPageError.cancelled)
///                     }
///                 }
///                 session.presentationContextProvider = self
///                 // Ephemeral: no cookies shared with Safari, so every login asks again.
///                 session.prefersEphemeralWebBrowserSession = true
///                 DispatchQueue.main.async { session.start() }
///             }
///         }
///
///         func presentationAnchor(for session: ASWebAuthenticationSession)
///             -> ASPresentationAnchor { ASPresentationAnchor() }
///     }
public protocol LoginPage {
    func open(url: URL, callbackScheme: String) async throws -> URL
}

public enum LoginPageError: Error {
    case cancelled
}

/// What a login ended with, for the UI.
public enum LoginOutcome {
    /// Logged in as `user`; `replaced` is the anonymous user of this device it replaced (an
    /// upgrade), whose server-side data the app may move.
    case loggedIn(user: UserIdentifier, replaced: UserIdentifier?)
    /// The person closed the login page.
    case cancelled
    /// Refused: the status and the runtime's description (what to do next).
    case failed(status: StatusType, description: String)
}

/// The identified user's part of the MasterController: login, offline login, step-up, logout.
public final class IdentifiedUserSession {
    // The app's registered redirect URI: a private-use scheme (RFC 8252 §7.1) that
    // ASWebAuthenticationSession catches; registered for client `demo-app` at the IDP.
    static let callbackScheme = "com.example.demo"
    static let redirectUri = "com.example.demo:/callback"

    private let controller: MasterController
    private let tenantId: String
    private let clientId: String
    private let loginPage: LoginPage
    private var registrations: [ListenerRegistration] = []

    public init(
        serverUrl: String, storeDirectory: URL, tenantId: String = "demo",
        clientId: String = "demo-app", loginPage: LoginPage
    ) throws {
        let config = MasterControllerConfig(
            serverUrl: serverUrl,
            store: .directory(path: storeDirectory.path))
        controller = try MasterController(config: config)
        self.tenantId = tenantId
        self.clientId = clientId
        self.loginPage = loginPage
        registrations.append(controller.addEventListener(listener: StepUpListener(session: self)))
    }

    /// StartEvent; then, if a user is stored, OfflineLoginEvent with its refresh token.
    public func start() async -> SdkState? {
        let started = await controller.postEvent(event: .startEvent(StartEvent(appName: "Demo app")))
        guard case let .startResultEvent(result) = started, result.info.status == .ok else {
            return nil
        }
        return result.sdkState
    }

    /// The browser login. `acrValues`/`maxAge`: what a step-up asked for (else nil).
    public func logIn(acrValues: String? = nil, maxAge: UInt64? = nil) async -> LoginOutcome {
        let created = await controller.postEvent(
            event: .createAuthorizationRequestEvent(
                CreateAuthorizationRequestEvent(
                    tenantId: tenantId, clientId: clientId, redirectUri: Self.redirectUri,
                    acrValues: acrValues, maxAge: maxAge)))
        guard case let .createAuthorizationRequestResultEvent(request) = created,
            request.info.status == .ok, let url = URL(string: request.authorizationUrl)
        else {
            return failure(created)
        }
        let callbackURL: URL
        do {
            callbackURL = try await loginPage.open(url: url, callbackScheme: Self.callbackScheme)
        } catch {
            // Nothing to tell the runtime: the pending request expires on its own.
            return .cancelled
        }
        // The whole callback URL: the runtime checks `state` (request.state) and `iss`, maps
        // an `error=` redirect to a status, and redeems the code with its PKCE verifier.
        let answer = await controller.postEvent(
            event: .setAuthorisationCodeEvent(
                SetAuthorisationCodeEvent(
                    tenantId: tenantId, clientId: clientId, authenticationMode: .no,
                    redirectUrl: callbackURL.absoluteString)))
        guard case let .statusResultEvent(done) = answer, done.info.status == .ok else {
            if eventStatus(event: answer) == .userCancel { return .cancelled }
            return failure(answer)
        }
        guard let user = await loggedInUser() else {
            return .failed(status: .loginRequired, description: "not logged in after the login")
        }
        return .loggedIn(user: user, replaced: done.replacedUserIdentifier)
    }

    /// After an app restart: the stored refresh token, no login page. `.noTokenDataAvailable`
    /// (logged out) or `.loginRequired` (revoked, expired): call `logIn()`.
    public func offlineLogin() async -> StatusType? {
        let answer = await controller.postEvent(event: .offlineLoginEvent(OfflineLoginEvent()))
        guard case let .offlineLoginResultEvent(result) = answer else { return nil }
        return result.info.status
    }

    /// A token for `audience` (the user's identity at that API).
    public func token(for audience: String) async -> String? {
        let answer = await controller.postEvent(
            event: .exchangeIamTokenEvent(ExchangeIamTokenEvent(audience: audience)))
        guard case let .exchangeIamTokenResultEvent(result) = answer, result.info.status == .ok
        else { return nil }
        return result.token
    }

    /// The MC-SDK's logout: every token dropped (the offline one revoked at the IDP), then a
    /// restart. An offline login afterwards answers `.noTokenDataAvailable`.
    public func logOut() async -> Bool {
        let cleared = await controller.postEvent(
            event: .clearIamTokenCacheEvent(ClearIamTokenCacheEvent(clearBehavior: .clearAll)))
        guard case let .clearIamTokenCacheResultEvent(result) = cleared, result.info.status == .ok
        else { return false }
        let restarted = await controller.postEvent(event: .restartEvent(RestartEvent()))
        guard case let .restartResultEvent(done) = restarted else { return false }
        return done.info.status == .ok
    }

    /// The user the runtime is logged in as (`userId` is the ID token's `sub`).
    public func loggedInUser() async -> UserIdentifier? {
        let answer = await controller.postEvent(event: .getInformationEvent(GetInformationEvent()))
        guard case let .getInformationResultEvent(information) = answer,
            information.sdkState == .loggedIn
        else { return nil }
        return information.loggedInUser
    }

    private func failure(_ event: Event) -> LoginOutcome {
        let status = eventStatus(event: event) ?? .internalError
        switch event {
        case let .createAuthorizationRequestResultEvent(result):
            return .failed(status: status, description: result.info.errorDescription)
        case let .statusResultEvent(result):
            return .failed(status: status, description: result.info.errorDescription)
        default:
            return .failed(status: status, description: eventTypeName(event: event))
        }
    }

    deinit {
        for registration in registrations {
            _ = registration.remove()
        }
        controller.shutdown()
    }
}

/// Pushed events of the identified user: the IDP wants a login again (refresh token refused,
/// or a step-up a resource asked for with RFC 9470 `insufficient_user_authentication`).
final class StepUpListener: EventListener {
    private weak var session: IdentifiedUserSession?

    init(session: IdentifiedUserSession) {
        self.session = session
    }

    func onEventReceived(event: Event) throws {
        guard case let .idpLoginRequiredEvent(required) = event else { return }
        let who = required.userIdentifier.userId
        // Listeners run on the runtime's threads: hop off before showing the login page.
        Task { [weak session] in
            print("login required for \(who)")
            _ = await session?.logIn(acrValues: required.acrValues, maxAge: required.maxAge)
        }
    }
}
