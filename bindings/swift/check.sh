#!/usr/bin/env bash
# Generates the Swift bindings of crates/mc-ffi (library and generator from the build of
# `cargo test --workspace`, see bindings/artifacts.sh) and checks them:
# the files exist, declare the API the Swift examples use (Examples/*.swift, every generated
# name they use checked by check_example_api.py), and match the committed copy in
# Generated/ byte for byte (drift check). There is no Swift toolchain here, so this is the
# Swift test of the run. `check.sh --update` refreshes Generated/ after an API change.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
update="${1:-}"

cd "$root"
# The library and generator `cargo test --workspace` built; no build of its own.
# shellcheck source=../artifacts.sh
. "$root/bindings/artifacts.sh"
mc_artifacts "$root"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# A copy: another build in the shared target dir may relink the library meanwhile.
cp "$MC_FFI_LIBRARY" "$out/libmc_ffi.so"
"$MC_UNIFFI_BINDGEN" generate --no-format --language swift \
    --library "$out/libmc_ffi.so" --out-dir "$out" >/dev/null
rm "$out/libmc_ffi.so"

passed=0
failed=0
check() { # description, command...
    local what="$1"
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: $what" >&2
    fi
}
has() { grep -Fq -- "$2" "$out/$1"; }

# Two UniFFI namespaces: mc_runtime (the controller, listeners, keys, logs) and mc_events (the
# event catalog's own types: RequestEvent, Event, every request, result and pushed record).
files="mc_runtime.swift mc_runtimeFFI.h mc_runtimeFFI.modulemap mc_events.swift mc_eventsFFI.h mc_eventsFFI.modulemap"
swift="mc_runtime.swift"
events="mc_events.swift"
for file in $files; do
    check "$file generated" test -s "$out/$file"
done
cat "$out/$swift" "$out/$events" >"$out/all.swift.txt"
check "MasterController class" has "$swift" "open class MasterController: MasterControllerProtocol"
check "throwing constructor with optional providers" has "$swift" \
    "public convenience init(config: MasterControllerConfig, keyProvider: KeyProvider? = nil, biometricKeyProvider: BiometricKeyProvider? = nil)throws"
check "postEvent is async" has "$swift" "open func postEvent(event: RequestEvent)async  -> Event"
check "postEventWithTimeout is async" has "$swift" "open func postEventWithTimeout(event: RequestEvent, timeoutMs: UInt64)async  -> Event"
check "postJson is async" has "$swift" "open func postJson(json: String)async  -> String"
check "forwardEvent" has "$swift" "open func forwardEvent(event: RequestEvent) -> String"
check "RequestEvent: one case per request, carrying its record" has "$events" \
    "case enrollAnonymousUserEvent(EnrollAnonymousUserEvent"
check "Event: one case per event, carrying its record" has "$events" \
    "case exchangeIamTokenResultEvent(ExchangeIamTokenResultEvent"
check "typed enrollment request record, password optional" grep -Pzq \
    'public init\(tenantId: String, authenticationMode: AuthenticationMode, clientId: String,[^)]*\*/password: SecretString\? = nil,[\s\S]*?replaceExisting: Bool = false\)' \
    "$out/$events"
check "a secret crosses as a plain string" has "$events" "public typealias SecretString = String"
check "nextAction on results" has "$events" "public var nextAction: NextAction?"
check "authentication modes .no .password .biometric" grep -Pzq \
    'public enum AuthenticationMode[^}]*case no\s[^}]*case password\s[^}]*case biometric\s' "$out/$events"
# The identified user's events (issue 10): the requests, their cases and the result fields.
check "RequestEvent: CreateAuthorizationRequestEvent case" has "$events" \
    "case createAuthorizationRequestEvent(CreateAuthorizationRequestEvent"
check "RequestEvent: SetAuthorisationCodeEvent case" has "$events" \
    "case setAuthorisationCodeEvent(SetAuthorisationCodeEvent"
check "Event: CreateAuthorizationRequestResultEvent case" has "$events" \
    "case createAuthorizationRequestResultEvent(CreateAuthorizationRequestResultEvent"
check "Event: IdpLoginRequiredEvent case" has "$events" "case idpLoginRequiredEvent(IdpLoginRequiredEvent"
check "authorization request record, optional fields defaulted" grep -Pzq \
    'public init\(tenantId: String,(\s*/\*\*(?:(?!\*/)[\s\S])*\*/)?clientId: String,(\s*/\*\*(?:(?!\*/)[\s\S])*\*/)?redirectUri: String,(\s*/\*\*(?:(?!\*/)[\s\S])*\*/)?scope: String\? = nil' \
    "$out/$events"
check "code record: redirectUrl or authorisationCode + state, keepAnonymous" grep -Pzq \
    'public init\(tenantId: String, clientId: String, authenticationMode: AuthenticationMode,[^{]*redirectUrl: SecretString\? = nil, authorisationCode: SecretString\? = nil, state: String\? = nil,[^{]*keepAnonymous: Bool\? = nil\) \{' \
    "$out/$events"
check "the login page's URL in the result" has "$events" "public var authorizationUrl: String"
check "the replaced anonymous user in the status result" has "$events" \
    "public var replacedUserIdentifier: UserIdentifier?"
check "clear behaviours" grep -Pzq \
    'public enum ClearBehavior[^}]*case clearAll\s[^}]*case clearAccessAndRefresh\s[^}]*case clearOffline\s' "$out/$events"
check "EventListener protocol" has "$swift" "func onEventReceived(event: Event) throws"
check "SynchronousEventHandler protocol" has "$swift" "func executeEvent(event: Event) throws"
check "BiometricKeyProvider protocol" has "$swift" "public protocol BiometricKeyProvider: AnyObject, Sendable"
check "KeyProvider protocol" has "$swift" "public protocol KeyProvider: AnyObject, Sendable"
check "LogSink protocol" has "$swift" "public protocol LogSink: AnyObject, Sendable"
check "removable listener registration" has "$swift" "open func remove() -> Bool"

# Every generated name the example calls must exist.
example="$here/Examples/AnonymousEnrollment.swift"
for name in "addEventListener(listener:" "postEvent(event:" "MasterControllerConfig(" "func eventStatus(event:" \
    "func eventTypeName(event:" "case directory(path:" "case startEvent(" "case startResultEvent(" \
    "case statusResultEvent(" "case exchangeIamTokenEvent(" "case exchangeIamTokenResultEvent(" \
    "open func shutdown()" "case activationRequired" "public struct StartEvent" "public struct ExchangeIamTokenEvent" \
    "public struct EnrollAnonymousUserEvent"; do
    check "example's API: $name" has all.swift.txt "$name"
done
for name in "KSMEnrollAnonymousUserEvent(tenantId: tenant, authenticationMode: authenticationMode, clientId: clientId)" \
    "masterControllerAdapter.sendEvent2MasterController(tokenRequest)" \
    "public func triggerEnrollAnonymousUser(tenant: String, authenticationMode: KSMAuthenticationMode, clientId: String, completion: @escaping (KsEvent) -> Void)"; do
    check "example mirrors the seed: $name" grep -Fq -- "$name" "$example"
done

# Every generated name each example uses (types, cases, fields, call labels) exists in what
# was generated now: the compiler's name lookup, without a Swift toolchain.
for example in "$here"/Examples/*.swift; do
    check "$(basename "$example") uses only generated API" \
        python3 "$here/check_example_api.py" "$example" "$out/$swift" "$out/$events"
done
# The checker itself: a field renamed in a regeneration must fail it (else it checks nothing).
sed 's/\bredirectUrl\b/redirectURL/g; s/\bcase clearAll\b/case clearEverything/' \
    "$out/$events" >"$out/renamed.swift.txt"
check "a renamed field fails the example check" \
    bash -c '! python3 "$1" "$2" "$3" "$4" >/dev/null' _ "$here/check_example_api.py" \
    "$here/Examples/IdentifiedLogin.swift" "$out/$swift" "$out/renamed.swift.txt"

if [ "$update" = "--update" ]; then
    for file in $files; do
        cp "$out/$file" "$here/Generated/"
    done
    echo "Generated/ updated"
fi
for file in $files; do
    if diff -q "$here/Generated/$file" "$out/$file" >/dev/null; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: Generated/$file differs from what uniffi-bindgen generates now:" >&2
        diff -u "$here/Generated/$file" "$out/$file" | head -40 >&2 || true
        echo "If the API change is intended, run bindings/swift/check.sh --update and commit." >&2
    fi
done

echo "swift-bindings: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
