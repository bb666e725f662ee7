//! Requests the host sends to the runtime: one struct per request, [`RequestEvent`] over all of
//! them, and [`Request`] (an event plus its request id and trace context).

use std::collections::BTreeMap;
use std::fmt;

use mc_secret::SecretString;
use serde::{Deserialize, Serialize};

use crate::parse::InvalidRequest;
use crate::types::{
    AppVersion, AuthenticationMode, ClearBehavior, HttpMethod, RequestId, SdkState, TraceContext,
    UserIdentifier,
};

/// Longest `appName`, in bytes of UTF-8 (the MC-SDK's limit).
pub const MAX_APP_NAME_BYTES: usize = 32;
/// Longest `tenantId`, `clientId`, `audience` or user id, in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 256;
/// Fewest digits of a PIN (mode PIN). Six, as the platforms' own PIN prompts ask for.
pub const PIN_MIN_DIGITS: usize = 6;
/// Most digits of a PIN (mode PIN).
pub const PIN_MAX_DIGITS: usize = 12;

/// Why `pin` is not a PIN (`None` when it is one): only ASCII digits `0`–`9` (other scripts'
/// digits, such as Arabic-Indic ones, look alike but are other characters), between
/// [`PIN_MIN_DIGITS`] and [`PIN_MAX_DIGITS`] of them. The message never quotes the PIN.
pub fn pin_problem(pin: &str) -> Option<String> {
    if !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Some(
            "a PIN has only the digits 0-9 (no letters, spaces or other scripts' digits)"
                .to_owned(),
        );
    }
    if !(PIN_MIN_DIGITS..=PIN_MAX_DIGITS).contains(&pin.len()) {
        return Some(format!(
            "a PIN has {PIN_MIN_DIGITS} to {PIN_MAX_DIGITS} digits, this one has {}",
            pin.len()
        ));
    }
    None
}

/// Longest `locale` (a BCP 47 language tag such as `en-GB`; `en_GB` is read as `en-GB`).
pub const MAX_LOCALE_BYTES: usize = 35;
/// Longest value in `StartEvent.configuration`, in bytes.
pub const MAX_CONFIGURATION_VALUE_BYTES: usize = 2048;
/// The keys of `StartEvent.configuration` the runtime takes; any other key is refused with
/// INVALID_PARAMETER naming it, never ignored. `serverUrl`: the IDP base URL for enrollments
/// from then on (https, or plain http to a loopback host), replacing the configured one.
/// `audienceScopes`: which OAuth scope brings each API's audience into an identified user's
/// access token, as `audience=scope` pairs separated by commas (see
/// [`parse_audience_scopes`]); those audiences' tokens then come from the refresh grant
/// narrowed to that scope instead of the token exchange.
pub const START_CONFIGURATION_KEYS: &[&str] = &["serverUrl", "audienceScopes"];
/// Most `audience=scope` pairs in `configuration.audienceScopes`.
pub const MAX_AUDIENCE_SCOPES: usize = 32;

/// Reads `configuration.audienceScopes`: `audience=scope` pairs separated by commas (spaces
/// around a pair are ignored), e.g. `demo-api=demo-api-audience, orders=orders-audience`.
/// An audience is an identifier without `,`, `=` or spaces; a scope one RFC 6749 §3.3
/// scope-token (printable ASCII without space, `"`, `\` or `,`), not `openid` or
/// `offline_access` (they bring no audience). Refused: an empty or malformed pair, an
/// audience named twice, more than [`MAX_AUDIENCE_SCOPES`] pairs. The error says which pair.
pub fn parse_audience_scopes(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut scopes = BTreeMap::new();
    for (index, pair) in text.split(',').map(str::trim).enumerate() {
        if index >= MAX_AUDIENCE_SCOPES {
            return Err(format!(
                "at most {MAX_AUDIENCE_SCOPES} audience=scope pairs"
            ));
        }
        let at = |why: &str| {
            format!(
                "pair {}: {why}; write audience=scope, comma-separated",
                index + 1
            )
        };
        let (audience, scope) = pair.split_once('=').ok_or_else(|| at("no `=`"))?;
        let audience_ok = !audience.is_empty()
            && audience.len() <= MAX_IDENTIFIER_BYTES
            && audience
                .chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && c != '=');
        if !audience_ok {
            return Err(at("the audience is empty, too long or has spaces or `=`"));
        }
        let scope_ok = !scope.is_empty()
            && scope.len() <= MAX_IDENTIFIER_BYTES
            && scope
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\' && b != b',');
        if !scope_ok {
            return Err(at(
                "the scope is not one scope-token (printable ASCII without space, quote, backslash or comma)",
            ));
        }
        if scope == "openid" || scope == "offline_access" {
            return Err(at(
                "openid and offline_access bring no audience; name the audience's scope",
            ));
        }
        if scopes
            .insert(audience.to_owned(), scope.to_owned())
            .is_some()
        {
            return Err(at("the audience is named twice"));
        }
    }
    Ok(scopes)
}

/// Starts the runtime. The only request valid before the first `StartResultEvent`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct StartEvent {
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<AppVersion>,
    /// At most [`MAX_APP_NAME_BYTES`] bytes of UTF-8.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<BTreeMap<String, String>>,
}

impl StartEvent {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Re-initialises the runtime. Not a logout: enrolled users survive.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct RestartEvent {
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<AppVersion>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
}

impl RestartEvent {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Enrolls the device anonymously at the IDP (tenant = realm, client = the enrollment client).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct EnrollAnonymousUserEvent {
    pub tenant_id: String,
    pub authentication_mode: AuthenticationMode,
    pub client_id: String,
    /// The local password, for mode PASSWORD.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretString>,
    /// **Ours**: while LOGGED_IN, an enrollment with the logged-in user's tenant and
    /// enrollment client replaces that identity (deleted at the IDP) only when this is true;
    /// otherwise it is refused with INVALID_STATE (send DeleteUserEvent first).
    #[cfg_attr(feature = "uniffi", uniffi(default = false))]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replace_existing: bool,
}

impl EnrollAnonymousUserEvent {
    pub fn new(
        tenant_id: impl Into<String>,
        authentication_mode: AuthenticationMode,
        client_id: impl Into<String>,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            authentication_mode,
            client_id: client_id.into(),
            password: None,
            replace_existing: false,
        }
    }

    pub fn with_password(mut self, password: impl Into<SecretString>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Replace the logged-in identity of the same tenant and client (see `replace_existing`).
    pub fn replacing_existing(mut self) -> Self {
        self.replace_existing = true;
        self
    }
}

/// Logs an enrolled user in with the stored credential (default: the user who logged in last).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct OfflineLoginEvent {
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_identifier: Option<UserIdentifier>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretString>,
}

impl OfflineLoginEvent {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn for_user(mut self, user: UserIdentifier) -> Self {
        self.user_identifier = Some(user);
        self
    }

    pub fn with_password(mut self, password: impl Into<SecretString>) -> Self {
        self.password = Some(password.into());
        self
    }
}

/// Asks for an IAM token for `audience` (cached until close to expiry unless `forceUpdate`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct ExchangeIamTokenEvent {
    pub audience: String,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default)]
    pub force_update: bool,
}

impl ExchangeIamTokenEvent {
    pub fn new(audience: impl Into<String>) -> Self {
        Self {
            audience: audience.into(),
            force_update: false,
        }
    }

    pub fn with_force_update(mut self, force_update: bool) -> Self {
        self.force_update = force_update;
        self
    }
}

/// Asks for the claims of the device's own token (never the token itself).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct GetIamAccessTokenClaimsEvent {}

impl GetIamAccessTokenClaimsEvent {
    pub fn new() -> Self {
        Self {}
    }
}

/// Clears cached tokens of a user (default: the logged-in user).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct ClearIamTokenCacheEvent {
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_identifier: Option<UserIdentifier>,
    #[serde(default)]
    pub clear_behavior: ClearBehavior,
}

impl ClearIamTokenCacheEvent {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_behavior(mut self, clear_behavior: ClearBehavior) -> Self {
        self.clear_behavior = clear_behavior;
        self
    }

    pub fn for_user(mut self, user: UserIdentifier) -> Self {
        self.user_identifier = Some(user);
        self
    }
}

/// Drops the cached IAM tokens of the given audiences.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct DeleteIamTokenByAudienceEvent {
    pub audiences: Vec<String>,
}

impl DeleteIamTokenByAudienceEvent {
    pub fn new<I, S>(audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            audiences: audiences.into_iter().map(Into::into).collect(),
        }
    }
}

/// Asks for the runtime's version, state, logged-in user and IDP configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct GetInformationEvent {}

impl GetInformationEvent {
    pub fn new() -> Self {
        Self {}
    }
}

/// Deletes an enrolled user: its registration at the IDP and everything stored locally.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct DeleteUserEvent {
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_identifier: Option<UserIdentifier>,
}

impl DeleteUserEvent {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn for_user(mut self, user: UserIdentifier) -> Self {
        self.user_identifier = Some(user);
        self
    }
}

/// Switches how the logged-in user's credential is guarded; never loses the credential.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct EnableAuthenticationModeEvent {
    pub authentication_mode: AuthenticationMode,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The current password, when leaving mode PASSWORD.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretString>,
    /// The new password, when entering mode PASSWORD.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_password: Option<SecretString>,
}

impl EnableAuthenticationModeEvent {
    pub fn new(authentication_mode: AuthenticationMode) -> Self {
        Self {
            authentication_mode,
            client_id: None,
            password: None,
            new_password: None,
        }
    }
}

/// Makes the enrolled user of another tenant (the MC-SDK's workspace) the active one: the
/// user an OfflineLogin without `userIdentifier` logs in. The current session ends (its
/// in-memory tokens are dropped); the choice is stored, so a restart keeps it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct SwitchWorkspaceEvent {
    pub tenant_id: String,
}

impl SwitchWorkspaceEvent {
    pub fn new(tenant_id: impl Into<String>) -> Self {
        Self {
            tenant_id: tenant_id.into(),
        }
    }
}

/// An HTTP request the runtime sends for the host, attaching the IAM token of `audience`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct CreateHttpCommonRequest {
    pub full_url: String,
    pub method: HttpMethod,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default)]
    pub http_headers: BTreeMap<String, String>,
    /// PEM certificates to pin the server to.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_chain: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default = true))]
    #[serde(default = "default_true")]
    pub follow_redirect: bool,
    /// The audience whose IAM token is attached as `Authorization: Bearer`.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The MC-SDK's name for `audience`; give one or the other (or both, equal).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_identifier: Option<String>,
    /// Milliseconds for the whole exchange.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

fn default_true() -> bool {
    true
}

impl CreateHttpCommonRequest {
    pub fn new(full_url: impl Into<String>, method: HttpMethod) -> Self {
        Self {
            full_url: full_url.into(),
            method,
            content: None,
            content_type: None,
            http_headers: BTreeMap::new(),
            certificate_chain: None,
            follow_redirect: true,
            audience: None,
            access_token_identifier: None,
            timeout: None,
        }
    }

    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    pub fn with_content(
        mut self,
        content: impl Into<String>,
        content_type: impl Into<String>,
    ) -> Self {
        self.content = Some(content.into());
        self.content_type = Some(content_type.into());
        self
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.http_headers.insert(name.into(), value.into());
        self
    }

    pub fn with_timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.timeout = Some(timeout_ms);
        self
    }

    /// The audience whose token to attach: `audience`, else `accessTokenIdentifier`.
    pub fn effective_audience(&self) -> Option<&str> {
        self.audience
            .as_deref()
            .or(self.access_token_identifier.as_deref())
    }
}

// Bodies and header values may hold credentials the host put there, and bodies may be large:
// Debug shows sizes and header names only.
impl fmt::Debug for CreateHttpCommonRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateHttpCommonRequest")
            .field("full_url", &self.full_url)
            .field("method", &self.method)
            .field(
                "content",
                &self.content.as_ref().map(|c| ByteCount(c.len())),
            )
            .field("content_type", &self.content_type)
            .field("http_headers", &HeaderNames(&self.http_headers))
            .field(
                "certificate_chain",
                &self.certificate_chain.as_ref().map(|c| ByteCount(c.len())),
            )
            .field("follow_redirect", &self.follow_redirect)
            .field("audience", &self.audience)
            .field("access_token_identifier", &self.access_token_identifier)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Debug helper: prints `<N bytes>`.
pub(crate) struct ByteCount(pub(crate) usize);

impl fmt::Debug for ByteCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

/// Debug helper: prints the names of a header map, not the values.
pub(crate) struct HeaderNames<'a>(pub(crate) &'a BTreeMap<String, String>);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Asks the runtime to re-send what it is waiting for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct GetStateEvent {}

impl GetStateEvent {
    pub fn new() -> Self {
        Self {}
    }
}

/// Longest `redirectUrl` / `redirectUri` / `authorisationCode` / `state` / `scope` /
/// `acrValues`, in bytes: far above what IDPs send, low enough that a hostile app cannot make
/// the runtime parse megabytes.
pub const MAX_AUTHORIZATION_FIELD_BYTES: usize = 8192;

/// Asks the runtime to build an authorization request (RFC 6749 code flow with PKCE S256,
/// state, nonce, DPoP key binding, PAR where the IDP offers it) for the app to open in a
/// browser. Answered by `CreateAuthorizationRequestResultEvent` with the URL and `state`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct CreateAuthorizationRequestEvent {
    pub tenant_id: String,
    /// The IDP's public native client (RFC 8252).
    pub client_id: String,
    /// Where the IDP sends the browser back (loopback `http://127.0.0.1:PORT/...` or a
    /// private-use scheme); registered at the IDP for `client_id`.
    pub redirect_uri: String,
    /// Default `openid offline_access`.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// RFC 9470 `max_age` (seconds), e.g. from a step-up challenge.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
}

impl CreateAuthorizationRequestEvent {
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        redirect_uri: impl Into<String>,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            scope: None,
            acr_values: None,
            login_hint: None,
            prompt: None,
            max_age: None,
        }
    }
}

/// Hands the runtime the result of the browser login: the whole `redirectUrl` the IDP sent
/// the browser to, or its `authorisationCode` and `state`. The runtime redeems the code and
/// logs the user in (protecting the stored offline token with `authenticationMode`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[serde(rename_all = "camelCase")]
pub struct SetAuthorisationCodeEvent {
    pub tenant_id: String,
    pub client_id: String,
    pub authentication_mode: AuthenticationMode,
    /// The local password, for mode PASSWORD.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretString>,
    /// The redirect URL with `code`, `state` (and `iss`) or `error`. Holds a code: secret.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<SecretString>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorisation_code: Option<SecretString>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Upgrade of an anonymous device: keep the anonymous registration at the IDP (default:
    /// it is deleted).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_anonymous: Option<bool>,
}

impl SetAuthorisationCodeEvent {
    /// With the whole redirect URL the browser was sent to.
    pub fn with_redirect_url(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        authentication_mode: AuthenticationMode,
        redirect_url: impl Into<SecretString>,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            authentication_mode,
            password: None,
            redirect_url: Some(redirect_url.into()),
            authorisation_code: None,
            state: None,
            keep_anonymous: None,
        }
    }

    /// With the code and state taken from the redirect by the app.
    pub fn with_code(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        authentication_mode: AuthenticationMode,
        authorisation_code: impl Into<SecretString>,
        state: impl Into<String>,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            authentication_mode,
            password: None,
            redirect_url: None,
            authorisation_code: Some(authorisation_code.into()),
            state: Some(state.into()),
            keep_anonymous: None,
        }
    }

    pub fn with_password(mut self, password: impl Into<SecretString>) -> Self {
        self.password = Some(password.into());
        self
    }
}

pub(crate) use crate::catalog::deserialize_request;
pub use crate::catalog::{RequestEvent, RequestKind};

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl RequestKind {
    /// Whether this request is valid in `state` (see [`RequestKind::valid_states`]).
    pub fn is_valid_in(self, state: SdkState) -> bool {
        self.valid_states().contains(&state)
    }
}

impl RequestEvent {
    /// The request's `"type"` name.
    pub const fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Checks what types alone cannot: sizes, non-empty identifiers, at least one audience.
    /// `Request::from_json` runs it; run it on requests built in Rust too (the runtime does).
    pub fn validate(&self) -> Result<(), InvalidRequest> {
        self.check().map_err(|(field, message)| InvalidRequest {
            request_id: None,
            trace_context: None,
            kind: Some(self.kind()),
            field: Some(field),
            message,
        })
    }

    fn check(&self) -> Result<(), (String, String)> {
        match self {
            RequestEvent::StartEvent(e) => {
                check_app_name(e.app_name.as_deref())?;
                check_locale(e.locale.as_deref())?;
                check_configuration(e.configuration.as_ref())
            }
            RequestEvent::RestartEvent(e) => {
                check_app_name(e.app_name.as_deref())?;
                check_locale(e.locale.as_deref())
            }
            RequestEvent::EnrollAnonymousUserEvent(e) => {
                check_identifier("tenantId", &e.tenant_id)?;
                check_identifier("clientId", &e.client_id)
            }
            RequestEvent::OfflineLoginEvent(e) => check_user(e.user_identifier.as_ref()),
            RequestEvent::ExchangeIamTokenEvent(e) => check_identifier("audience", &e.audience),
            RequestEvent::ClearIamTokenCacheEvent(e) => check_user(e.user_identifier.as_ref()),
            RequestEvent::DeleteIamTokenByAudienceEvent(e) => {
                if e.audiences.is_empty() {
                    return Err((
                        "audiences".to_owned(),
                        "give at least one audience".to_owned(),
                    ));
                }
                for (index, audience) in e.audiences.iter().enumerate() {
                    check_identifier(&format!("audiences[{index}]"), audience)?;
                }
                Ok(())
            }
            RequestEvent::DeleteUserEvent(e) => check_user(e.user_identifier.as_ref()),
            RequestEvent::EnableAuthenticationModeEvent(e) => match &e.client_id {
                Some(client_id) => check_identifier("clientId", client_id),
                None => Ok(()),
            },
            RequestEvent::CreateHttpCommonRequest(e) => check_http(e),
            RequestEvent::CreateAuthorizationRequestEvent(e) => check_authorization_request(e),
            RequestEvent::SetAuthorisationCodeEvent(e) => check_authorisation_code(e),
            RequestEvent::SwitchWorkspaceEvent(e) => check_identifier("tenantId", &e.tenant_id),
            RequestEvent::GetIamAccessTokenClaimsEvent(_)
            | RequestEvent::GetInformationEvent(_)
            | RequestEvent::GetStateEvent(_) => Ok(()),
        }
    }
}

fn check_app_name(app_name: Option<&str>) -> Result<(), (String, String)> {
    match app_name {
        Some(name) if name.len() > MAX_APP_NAME_BYTES => Err((
            "appName".to_owned(),
            format!(
                "too long: {} bytes, at most {MAX_APP_NAME_BYTES} bytes of UTF-8",
                name.len()
            ),
        )),
        Some(name) => match crate::parse::control_character(name) {
            Some(message) => Err(("appName".to_owned(), message)),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

/// A BCP 47 tag: letters, digits, `-` (or `_`), starting with a letter. It becomes an HTTP
/// header value (`Accept-Language`), so nothing else may pass.
fn check_locale(locale: Option<&str>) -> Result<(), (String, String)> {
    let Some(locale) = locale else {
        return Ok(());
    };
    let well_formed = (1..=MAX_LOCALE_BYTES).contains(&locale.len())
        && locale.starts_with(|c: char| c.is_ascii_alphabetic())
        && locale
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if well_formed {
        Ok(())
    } else {
        Err((
            "locale".to_owned(),
            format!(
                "expected a BCP 47 language tag such as `en-GB` (letters, digits and `-`, at \
                 most {MAX_LOCALE_BYTES} bytes)"
            ),
        ))
    }
}

/// Only the keys of [`START_CONFIGURATION_KEYS`]; the error names an unknown key (when it is
/// short, printable ASCII: a key is the host's name for a setting, never a secret).
fn check_configuration(
    configuration: Option<&BTreeMap<String, String>>,
) -> Result<(), (String, String)> {
    for (key, value) in configuration.into_iter().flatten() {
        if !START_CONFIGURATION_KEYS.contains(&key.as_str()) {
            let printable = key.len() <= 64 && key.bytes().all(|b| b.is_ascii_graphic());
            let field = if printable {
                format!("configuration.{key}")
            } else {
                "configuration".to_owned()
            };
            return Err((
                field,
                format!(
                    "unknown configuration key; the runtime takes only {}",
                    START_CONFIGURATION_KEYS
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let field = format!("configuration.{key}");
        if value.is_empty() {
            return Err((field, "must not be empty".to_owned()));
        }
        if value.len() > MAX_CONFIGURATION_VALUE_BYTES {
            return Err((
                field,
                format!("too long: at most {MAX_CONFIGURATION_VALUE_BYTES} bytes"),
            ));
        }
        if let Some(message) = crate::parse::control_character(value) {
            return Err((field, message));
        }
        if key == "audienceScopes" {
            parse_audience_scopes(value).map_err(|message| (field, message))?;
        }
    }
    Ok(())
}

fn check_identifier(field: &str, value: &str) -> Result<(), (String, String)> {
    if value.is_empty() {
        return Err((field.to_owned(), "must not be empty".to_owned()));
    }
    if value.len() > MAX_IDENTIFIER_BYTES {
        return Err((
            field.to_owned(),
            format!(
                "too long: {} bytes, at most {MAX_IDENTIFIER_BYTES}",
                value.len()
            ),
        ));
    }
    if let Some(message) = crate::parse::control_character(value) {
        return Err((field.to_owned(), message));
    }
    Ok(())
}

fn check_authorization_field(field: &str, value: &str) -> Result<(), (String, String)> {
    if value.is_empty() {
        return Err((field.to_owned(), "must not be empty".to_owned()));
    }
    if value.len() > MAX_AUTHORIZATION_FIELD_BYTES {
        return Err((
            field.to_owned(),
            format!(
                "too long: {} bytes, at most {MAX_AUTHORIZATION_FIELD_BYTES}",
                value.len()
            ),
        ));
    }
    if let Some(message) = crate::parse::control_character(value) {
        return Err((field.to_owned(), message));
    }
    Ok(())
}

fn check_authorization_request(
    e: &CreateAuthorizationRequestEvent,
) -> Result<(), (String, String)> {
    check_identifier("tenantId", &e.tenant_id)?;
    check_identifier("clientId", &e.client_id)?;
    check_authorization_field("redirectUri", &e.redirect_uri)?;
    for (field, value) in [
        ("scope", &e.scope),
        ("acrValues", &e.acr_values),
        ("loginHint", &e.login_hint),
        ("prompt", &e.prompt),
    ] {
        if let Some(value) = value {
            check_authorization_field(field, value)?;
        }
    }
    Ok(())
}

/// Exactly one of `redirectUrl` or `authorisationCode` + `state`.
fn check_authorisation_code(e: &SetAuthorisationCodeEvent) -> Result<(), (String, String)> {
    check_identifier("tenantId", &e.tenant_id)?;
    check_identifier("clientId", &e.client_id)?;
    match (&e.redirect_url, &e.authorisation_code, &e.state) {
        (Some(url), None, None) => check_authorization_field("redirectUrl", url.expose()),
        (None, Some(code), Some(state)) => {
            check_authorization_field("authorisationCode", code.expose())?;
            check_authorization_field("state", state)
        }
        (None, Some(_), None) => Err((
            "state".to_owned(),
            "give the `state` of the redirect with `authorisationCode`".to_owned(),
        )),
        (None, None, Some(_)) => Err((
            "authorisationCode".to_owned(),
            "give the `authorisationCode` of the redirect with `state`".to_owned(),
        )),
        (None, None, None) => Err((
            "redirectUrl".to_owned(),
            "give the `redirectUrl` (or `authorisationCode` and `state`)".to_owned(),
        )),
        (Some(_), _, _) => Err((
            "redirectUrl".to_owned(),
            "give either `redirectUrl` or `authorisationCode` and `state`, not both".to_owned(),
        )),
    }
}

fn check_user(user: Option<&UserIdentifier>) -> Result<(), (String, String)> {
    match user {
        Some(user) => {
            check_identifier("userIdentifier.tenantId", &user.tenant_id)?;
            check_identifier("userIdentifier.userId", &user.user_id)
        }
        None => Ok(()),
    }
}

fn check_http(request: &CreateHttpCommonRequest) -> Result<(), (String, String)> {
    if request.full_url.is_empty() {
        return Err(("fullUrl".to_owned(), "must not be empty".to_owned()));
    }
    if let Some(audience) = &request.audience {
        check_identifier("audience", audience)?;
    }
    if let Some(identifier) = &request.access_token_identifier {
        check_identifier("accessTokenIdentifier", identifier)?;
        if request.audience.as_ref().is_some_and(|a| a != identifier) {
            return Err((
                "accessTokenIdentifier".to_owned(),
                "differs from `audience`: give one of the two".to_owned(),
            ));
        }
    }
    if request.timeout == Some(0) {
        return Err((
            "timeout".to_owned(),
            "must be at least 1 millisecond".to_owned(),
        ));
    }
    Ok(())
}

/// A request as posted: the event, plus the id that ties its result to it and its trace context.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub request_id: Option<RequestId>,
    pub trace_context: Option<TraceContext>,
    pub event: RequestEvent,
}

impl Request {
    pub fn new(event: impl Into<RequestEvent>) -> Self {
        Self {
            request_id: None,
            trace_context: None,
            event: event.into(),
        }
    }

    pub fn with_id(mut self, request_id: impl Into<RequestId>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    pub fn with_trace_context(mut self, trace_context: TraceContext) -> Self {
        self.trace_context = Some(trace_context);
        self
    }

    pub const fn kind(&self) -> RequestKind {
        self.event.kind()
    }

    /// [`RequestEvent::validate`] plus the request id and trace context checks, with the
    /// error carrying this request's id.
    pub fn validate(&self) -> Result<(), InvalidRequest> {
        crate::parse::check_envelope(self.request_id.as_ref(), self.trace_context.as_ref())
            .and_then(|()| self.event.validate())
            .map_err(|mut err| {
                err.kind = Some(self.kind());
                if err.request_id.is_none() {
                    err.request_id = self.request_id.clone();
                }
                let trace_is_at_fault = err
                    .field
                    .as_deref()
                    .is_some_and(|field| field.starts_with("traceContext"));
                if err.trace_context.is_none() && !trace_is_at_fault {
                    err.trace_context = self.trace_context.clone().map(Box::new);
                }
                err
            })
    }

    /// The JSON object: `"type"`, `requestId` / `traceContext` when set, then the event's fields.
    pub fn to_json_value(&self) -> serde_json::Value {
        crate::json::to_value_or_error(self)
    }

    /// The JSON text, one line, `"type"` first.
    pub fn to_json(&self) -> String {
        crate::json::to_string_or_error(self)
    }
}

impl From<RequestEvent> for Request {
    fn from(event: RequestEvent) -> Self {
        Request::new(event)
    }
}

impl Serialize for Request {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap as _};

        let fields = match serde_json::to_value(&self.event).map_err(S::Error::custom)? {
            serde_json::Value::Object(fields) => fields,
            _ => return Err(S::Error::custom("a request event is not a JSON object")),
        };
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", self.event.name())?;
        if let Some(id) = &self.request_id {
            map.serialize_entry("requestId", id)?;
        }
        if let Some(trace) = &self.trace_context {
            map.serialize_entry("traceContext", trace)?;
        }
        for (name, value) in fields.iter().filter(|(name, _)| name.as_str() != "type") {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Request::from_json_value(value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod audience_scope_tests {
    use super::*;

    #[test]
    fn audience_scopes_are_read_trimmed_and_in_pairs() {
        let scopes = parse_audience_scopes(" demo-api=demo-api-audience ,orders=orders:read")
            .expect("valid");
        assert_eq!(scopes.len(), 2);
        assert_eq!(scopes["demo-api"], "demo-api-audience");
        assert_eq!(scopes["orders"], "orders:read");
    }

    #[test]
    fn a_refusal_names_the_pair() {
        let refused = parse_audience_scopes("a=x, b").unwrap_err();
        assert!(refused.contains("pair 2"), "{refused}");
        let refused = parse_audience_scopes("a=x, a=y").unwrap_err();
        assert!(refused.contains("twice"), "{refused}");
    }
}
