// Anonymous enrollment from Swift, mirroring the MC-SDK's documented snippet
// `triggerEnrollAnonymousUser(tenant:authenticationMode:clientId:completion:)` one to one.
//
// Built against the generated bindings (bindings/swift/Generated/mc_runtime.swift and
// mc_events.swift, the event catalog's own types) inside the XCFramework package of
// docs/bindings.md. There is no Swift toolchain on the build machine:
// bindings/swift/check.sh checks that every API this file calls exists in the generated code.

import Foundation

// With the Swift package of docs/bindings.md the generated code is the module `McRuntime`.
#if canImport(McRuntime)
import McRuntime
#endif

// The MC-SDK's Swift names, as thin aliases over the generated types.
public typealias KsEvent = Event
public typealias KSMAuthenticationMode = AuthenticationMode

/// `KSMEnrollAnonymousUserEvent(tenantId:authenticationMode:clientId:)` of the MC-SDK.
public func KSMEnrollAnonymousUserEvent(
    tenantId: String, authenticationMode: KSMAuthenticationMode, clientId: String
) -> RequestEvent {
    .enrollAnonymousUserEvent(
        EnrollAnonymousUserEvent(
            tenantId: tenantId, authenticationMode: authenticationMode, clientId: clientId))
}

/// Logs the runtime's events; never the whole `ExchangeIamTokenResultEvent` (it holds a token).
final class LoggingListener: EventListener {
    func onEventReceived(event: Event) throws {
        let status = eventStatus(event: event).map { "\($0)" } ?? "-"
        print("event \(eventTypeName(event: event)) status \(status)")
    }
}

/// The app's adapter around the MasterController, named as in the MC-SDK's sample.
public final class MasterControllerAdapter {
    private let controller: MasterController
    private var registrations: [ListenerRegistration] = []

    public init(serverUrl: String, storeDirectory: URL) throws {
        let config = MasterControllerConfig(
            serverUrl: serverUrl,
            store: .directory(path: storeDirectory.path))
        controller = try MasterController(config: config)
        registrations.append(controller.addEventListener(listener: LoggingListener()))
    }

    /// Posts `request` and calls `completion` with its result event on the Swift concurrency
    /// pool (hop to the main actor before touching UI).
    public func sendEvent2MasterController(
        _ request: RequestEvent, completion: @escaping (KsEvent?) -> Void
    ) {
        let controller = self.controller
        Task {
            let result = await controller.postEvent(event: request)
            completion(result)
        }
    }

    /// `StartEvent`: tells whether the device must enroll (`.activationRequired`) or log in.
    public func start() async -> SdkState? {
        let result = await controller.postEvent(event: .startEvent(StartEvent(appName: "Demo app")))
        if case let .startResultEvent(started) = result, started.info.status == .ok {
            return started.sdkState
        }
        return nil
    }

    deinit {
        for registration in registrations {
            _ = registration.remove()
        }
        controller.shutdown()
    }
}

public final class EnrollmentScreen {
    let masterControllerAdapter: MasterControllerAdapter

    public init(adapter: MasterControllerAdapter) {
        masterControllerAdapter = adapter
    }

    // The MC-SDK's snippet, line for line.
    public func triggerEnrollAnonymousUser(tenant: String, authenticationMode: KSMAuthenticationMode, clientId: String, completion: @escaping (KsEvent) -> Void) {
        let tokenRequest = KSMEnrollAnonymousUserEvent(tenantId: tenant, authenticationMode: authenticationMode, clientId: clientId)
        masterControllerAdapter.sendEvent2MasterController(tokenRequest) { event in
            guard let returnedEvent = event else { return }
            completion(returnedEvent)
        }
    }

    /// After enrollment: an IAM token for an audience, then a call through the runtime.
    public func afterEnrollment(adapter: MasterControllerAdapter) {
        triggerEnrollAnonymousUser(tenant: "demo", authenticationMode: .no, clientId: "AnonymousUserEnrollment") { event in
            guard case let .statusResultEvent(enrolled) = event, enrolled.info.status == .ok else {
                print("enrollment failed: \(eventStatus(event: event).map { "\($0)" } ?? "-")")
                return
            }
            adapter.sendEvent2MasterController(.exchangeIamTokenEvent(ExchangeIamTokenEvent(audience: "demo-api"))) { exchanged in
                if case let .exchangeIamTokenResultEvent(result)? = exchanged {
                    print("IAM token for \(result.audience ?? "-"): \(result.info.status), expires \(result.expiresAt ?? 0)")
                }
            }
        }
    }
}
