//! The identified-user half of the protocol client: the authorization code flow for a public
//! native client (RFC 8252) with PKCE S256 (RFC 7636), `state` and `nonce`, DPoP key binding
//! of the code (`dpop_jkt`, RFC 9449 §10), PAR (RFC 9126) when advertised, the authorization
//! response with its RFC 9207 `iss` check, code redemption, ID token validation (OIDC Core
//! §3.1.3.7), the refresh grant and RFC 7009 revocation.
//!
//! What it must not touch: where pending requests are kept, which one a redirect belongs to
//! and what is stored — the runtime decides that. Secrets (verifier, nonce, code, tokens)
//! travel as [`SecretString`] and never reach a log line or an error text.

use std::fmt;

use mc_jose::SigningKey;
use mc_secret::SecretString;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::retry::Repeatable;
use crate::transport::{error_from_answer, Endpoint};
use crate::verify::{ClaimsSource, VerifiedToken};
use crate::{parse_token_answer, ClientAuth, OidcClient, OidcError, ProviderMetadata, TokenSet};

/// The scope of an authorization request that names none.
pub const DEFAULT_SCOPE: &str = "openid offline_access";
/// Random bytes of `state`, `nonce` and the PKCE verifier: 32 bytes = 43 base64url
/// characters, RFC 7636 §4.1's minimum verifier length and 256 bits of entropy.
const RANDOM_BYTES: usize = 32;
/// PKCE method: S256 only. `plain` would hand the verifier to whoever sees the URL.
const PKCE_METHOD: &str = "S256";
const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
const GRANT_REFRESH_TOKEN: &str = "refresh_token";

/// What the app asks for in an authorization request.
#[derive(Debug, Clone, Default)]
pub struct AuthorizationParams {
    pub client_id: String,
    pub redirect_uri: String,
    /// Default [`DEFAULT_SCOPE`].
    pub scope: Option<String>,
    pub acr_values: Option<String>,
    pub login_hint: Option<String>,
    /// Default `consent` when the scope asks for `offline_access` (OIDC Core §11: an OP
    /// ignores `offline_access` otherwise; node-oidc-provider does).
    pub prompt: Option<String>,
    pub max_age: Option<u64>,
}

/// An authorization request waiting for its redirect: what redeeming its code and checking
/// its ID token need. `Debug` shows no secret.
#[derive(Clone)]
pub struct PendingAuthorization {
    /// Not secret (it travels in the URL), but unguessable: it binds the redirect to this
    /// request (CSRF, RFC 6749 §10.12).
    pub state: String,
    pub nonce: SecretString,
    pub code_verifier: SecretString,
    pub client_id: String,
    pub redirect_uri: String,
    pub issuer: String,
    pub max_age: Option<u64>,
}

impl fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// The URL for the browser, and what to keep until the redirect comes back.
#[derive(Debug, Clone)]
pub struct AuthorizationStart {
    pub url: String,
    pub pending: PendingAuthorization,
}

/// The parameters of an authorization response (RFC 6749 §4.1.2), read from the redirect.
#[derive(Clone, Default)]
pub struct AuthorizationResponse {
    /// The redirect without its query and fragment (to compare with the redirect URI).
    pub redirect_base: String,
    pub code: Option<SecretString>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// Read from the whole redirect URL ([`parse_authorization_response`]): only then can a
    /// missing `iss` be told from one the app left out.
    pub whole_redirect: bool,
}

impl fmt::Debug for AuthorizationResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationResponse")
            .field("redirect_base", &self.redirect_base)
            .field("code", &self.code.as_ref().map(|_| "[redacted]"))
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// Why an authorization response is not a code to redeem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizationError {
    /// `error=access_denied`: the user or the IDP's policy said no.
    #[error("the identity provider denied the authorization (access_denied){}", said(.idp_says))]
    Denied { idp_says: Option<String> },
    /// `access_denied` whose description says the user cancelled.
    #[error("the user cancelled the login at the identity provider{}", said(.idp_says))]
    Cancelled { idp_says: Option<String> },
    /// `login_required`, `interaction_required`, `consent_required`,
    /// `account_selection_required`: an interactive login is needed.
    #[error("the identity provider needs an interactive login ({code}); open its login page without prompt=none")]
    InteractionRequired { code: String },
    /// Any other `error`.
    #[error("the identity provider answered the authorization request with `{code}`{}", said(.idp_says))]
    Other {
        code: String,
        idp_says: Option<String>,
    },
    /// `iss` names another issuer, or is missing where the IDP promised it (RFC 9207).
    #[error("the authorization response comes from another issuer than this request's (RFC 9207 iss); nothing was redeemed")]
    IssuerMismatch,
    /// Not a URL, or neither `code` nor `error`, or parameters given twice.
    #[error("the redirect URL is not an authorization response: {0}")]
    Malformed(String),
}

fn said(idp_says: &Option<String>) -> String {
    idp_says
        .as_ref()
        .map(|text| format!(" (the identity provider said: {text})"))
        .unwrap_or_default()
}

/// Reads an authorization response from the redirect URL: the query, or the fragment when
/// the query has neither `code` nor `error`. A parameter given twice is refused (RFC 6749
/// §3.1: parameters must not be included more than once).
pub fn parse_authorization_response(
    redirect_url: &str,
) -> Result<AuthorizationResponse, AuthorizationError> {
    let url = Url::parse(redirect_url)
        .map_err(|_| AuthorizationError::Malformed("not an absolute URL".into()))?;
    let mut base = url.clone();
    base.set_query(None);
    base.set_fragment(None);
    let from_query = read_params(url.query().unwrap_or_default())?;
    let params = if from_query.code.is_some() || from_query.error.is_some() {
        from_query
    } else {
        read_params(url.fragment().unwrap_or_default())?
    };
    if params.code.is_none() && params.error.is_none() {
        return Err(AuthorizationError::Malformed(
            "it has neither `code` nor `error`".into(),
        ));
    }
    Ok(AuthorizationResponse {
        redirect_base: base.to_string(),
        whole_redirect: true,
        ..params
    })
}

fn read_params(text: &str) -> Result<AuthorizationResponse, AuthorizationError> {
    let mut response = AuthorizationResponse::default();
    for (name, value) in url::form_urlencoded::parse(text.as_bytes()) {
        let slot_taken = match name.as_ref() {
            "code" => response
                .code
                .replace(SecretString::new(value.as_ref()))
                .is_some(),
            "state" => response.state.replace(value.into_owned()).is_some(),
            "iss" => response.iss.replace(value.into_owned()).is_some(),
            "error" => response.error.replace(value.into_owned()).is_some(),
            "error_description" => response
                .error_description
                .replace(value.into_owned())
                .is_some(),
            _ => false,
        };
        if slot_taken {
            return Err(AuthorizationError::Malformed(format!(
                "parameter `{}` is given twice",
                name.chars().take(32).collect::<String>()
            )));
        }
    }
    Ok(response)
}

impl AuthorizationResponse {
    /// The code, after RFC 9207's issuer check (`iss` must equal the issuer whenever present,
    /// and, in a whole redirect URL, be present when the IDP advertises
    /// `authorization_response_iss_parameter_supported`; a code and state the app took out of
    /// the redirect itself carry no `iss`) and the `error` mapping. `state` is the caller's to
    /// check first.
    pub fn code_for(&self, meta: &ProviderMetadata) -> Result<SecretString, AuthorizationError> {
        match &self.iss {
            Some(iss) if iss != &meta.issuer => return Err(AuthorizationError::IssuerMismatch),
            None if self.whole_redirect && meta.authorization_response_iss_parameter_supported => {
                return Err(AuthorizationError::IssuerMismatch)
            }
            _ => {}
        }
        if let Some(error) = &self.error {
            return Err(authorization_error(
                error,
                self.error_description.as_deref(),
            ));
        }
        match &self.code {
            Some(code) if !code.is_empty() => Ok(code.clone()),
            _ => Err(AuthorizationError::Malformed("`code` is empty".into())),
        }
    }
}

fn authorization_error(code: &str, description: Option<&str>) -> AuthorizationError {
    let idp_says = crate::idp_text(code, description);
    let cancelled = description.is_some_and(|d| {
        let d = d.to_ascii_lowercase();
        d.contains("cancel") || d.contains("abort")
    });
    match code {
        "access_denied" if cancelled => AuthorizationError::Cancelled { idp_says },
        "access_denied" => AuthorizationError::Denied { idp_says },
        "login_required"
        | "interaction_required"
        | "consent_required"
        | "account_selection_required" => AuthorizationError::InteractionRequired {
            code: code.to_string(),
        },
        other => AuthorizationError::Other {
            code: crate::transport::sanitize_error_code(other),
            idp_says,
        },
    }
}

/// A resource's RFC 9470 step-up challenge: what authentication it wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepUpChallenge {
    pub acr_values: Option<String>,
    pub max_age: Option<u64>,
}

/// RFC 9470 §3: a `WWW-Authenticate` challenge (Bearer or DPoP) with
/// `error="insufficient_user_authentication"`, and its `acr_values` / `max_age`. `None` for any
/// other challenge. Values are bounded (at most 1024 characters) and must be printable.
pub fn step_up_challenge(headers: &reqwest::header::HeaderMap) -> Option<StepUpChallenge> {
    headers
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|value| {
            let params = auth_params(value);
            let wanted = params
                .iter()
                .any(|(n, v)| n == "error" && v == "insufficient_user_authentication");
            if !wanted {
                return None;
            }
            let get = |name: &str| {
                params
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .filter(|v| v.len() <= 1024 && v.chars().all(|c| !c.is_control()))
            };
            Some(StepUpChallenge {
                acr_values: get("acr_values"),
                max_age: get("max_age").and_then(|v| v.parse().ok()),
            })
        })
}

/// The `name=value` / `name="value"` parameters of a challenge, scheme skipped.
fn auth_params(challenge: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut rest = challenge.trim();
    // The scheme is the first token when it is not itself a parameter.
    if let Some((first, after)) = rest.split_once(' ') {
        if !first.contains('=') {
            rest = after;
        }
    }
    while !rest.is_empty() {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let name = name.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    other => value.push(other),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.push((name, value));
        rest = remaining;
    }
    params
}

/// The answer to a code redemption: the tokens and the (not yet verified) ID token.
#[derive(Debug, Clone)]
pub struct CodeTokens {
    pub tokens: TokenSet,
    pub id_token: Option<SecretString>,
}

impl OidcClient {
    /// Builds the authorization request for `params`: fresh `state`, `nonce` and PKCE S256
    /// verifier from the system's randomness; `dpop_jkt` = the device key's thumbprint when
    /// DPoP is used with this IDP; pushed to the PAR endpoint when the IDP has one (the URL then
    /// carries only `client_id` and `request_uri`), else the parameters go in the query.
    pub async fn start_authorization(
        &self,
        meta: &ProviderMetadata,
        params: &AuthorizationParams,
        key: &SigningKey,
    ) -> Result<AuthorizationStart, OidcError> {
        let transport = &self.inner.transport;
        let endpoint = meta.authorization_endpoint.as_deref().ok_or_else(|| {
            OidcError::Config("the IDP advertises no authorization_endpoint".into())
        })?;
        let mut url = transport.endpoint_url(endpoint, "authorization_endpoint")?;
        if !meta.code_challenge_methods_supported.is_empty()
            && !meta
                .code_challenge_methods_supported
                .iter()
                .any(|m| m == PKCE_METHOD)
        {
            return Err(OidcError::Config(
                "the IDP does not offer PKCE S256 (code_challenge_methods_supported); plain is never used".into(),
            ));
        }
        let state = random(RANDOM_BYTES)?;
        let nonce = SecretString::new(random(RANDOM_BYTES)?);
        let code_verifier = SecretString::new(random(RANDOM_BYTES)?);
        let challenge = mc_jose::sha256_b64url(code_verifier.expose().as_bytes());
        let scope = params.scope.as_deref().unwrap_or(DEFAULT_SCOPE);
        let offline = scope.split(' ').any(|s| s == "offline_access");
        let prompt = params
            .prompt
            .as_deref()
            .or(if offline { Some("consent") } else { None });
        let max_age = params.max_age.map(|m| m.to_string());
        let jkt = self.uses_dpop(meta).then(|| key.kid().to_string());
        let mut query: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", &params.client_id),
            ("redirect_uri", &params.redirect_uri),
            ("scope", scope),
            ("state", &state),
            ("nonce", nonce.expose()),
            ("code_challenge", &challenge),
            ("code_challenge_method", PKCE_METHOD),
        ];
        let optional = [
            ("dpop_jkt", jkt.as_deref()),
            ("acr_values", params.acr_values.as_deref()),
            ("login_hint", params.login_hint.as_deref()),
            ("prompt", prompt),
            ("max_age", max_age.as_deref()),
        ];
        query.extend(optional.iter().filter_map(|(n, v)| v.map(|v| (*n, v))));

        match meta.pushed_authorization_request_endpoint.as_deref() {
            Some(par) => {
                let request_uri = self.push_authorization_request(par, &query).await?;
                url.query_pairs_mut()
                    .append_pair("client_id", &params.client_id)
                    .append_pair("request_uri", &request_uri);
            }
            None => {
                url.query_pairs_mut().extend_pairs(query.iter());
            }
        }
        Ok(AuthorizationStart {
            url: url.to_string(),
            pending: PendingAuthorization {
                state,
                nonce,
                code_verifier,
                client_id: params.client_id.clone(),
                redirect_uri: params.redirect_uri.clone(),
                issuer: meta.issuer.clone(),
                max_age: params.max_age,
            },
        })
    }

    /// RFC 9126: POSTs the request's parameters; answers the `request_uri`.
    async fn push_authorization_request(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> Result<String, OidcError> {
        #[derive(Deserialize)]
        struct ParAnswer {
            request_uri: String,
        }
        let transport = &self.inner.transport;
        let url = &transport.endpoint_url(endpoint, "pushed_authorization_request_endpoint")?;
        let answer = self
            .with_retries(
                Endpoint::Token,
                Repeatable::IfNotProcessed,
                move || async move {
                    let request = transport.http().post(url.clone()).form(form);
                    transport.send(Endpoint::Token, url, request).await
                },
            )
            .await?;
        if !answer.status.is_success() {
            return Err(error_from_answer(&answer));
        }
        let par: ParAnswer = answer.json("pushed authorization answer")?;
        if par.request_uri.is_empty() {
            return Err(OidcError::InvalidResponse(
                "pushed authorization answer has an empty request_uri".into(),
            ));
        }
        Ok(par.request_uri)
    }

    /// Redeems `code` (RFC 6749 §4.1.3) as the public client of `pending`, with its PKCE
    /// verifier and, when DPoP is used, a proof of `key` (so the tokens are bound to it).
    /// `invalid_grant` (expired, used, another client's code, wrong verifier) is
    /// [`OidcError::InvalidGrant`]. Never retried after it reached the IDP: a code is single-use.
    pub async fn redeem_code(
        &self,
        meta: &ProviderMetadata,
        pending: &PendingAuthorization,
        code: &SecretString,
        key: &SigningKey,
    ) -> Result<CodeTokens, OidcError> {
        let grant = &[
            ("grant_type", GRANT_AUTHORIZATION_CODE),
            ("code", code.expose()),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("code_verifier", pending.code_verifier.expose()),
        ];
        self.public_token_grant(meta, &pending.client_id, key, grant)
            .await
    }

    /// The refresh grant (RFC 6749 §6) as the public client `client_id`, with a DPoP proof
    /// of `key` when DPoP is used (a DPoP-bound refresh token needs it). `scope` narrows the
    /// new access token to part of the granted scope (`None`: the whole grant). The answer may
    /// carry a new (rotated) refresh token; the caller must store it before using the tokens.
    pub async fn refresh(
        &self,
        meta: &ProviderMetadata,
        client_id: &str,
        key: &SigningKey,
        refresh_token: &SecretString,
        scope: Option<&str>,
    ) -> Result<CodeTokens, OidcError> {
        let mut grant = vec![
            ("grant_type", GRANT_REFRESH_TOKEN),
            ("refresh_token", refresh_token.expose()),
        ];
        if let Some(scope) = scope {
            grant.push(("scope", scope));
        }
        self.public_token_grant(meta, client_id, key, &grant).await
    }

    /// A token-endpoint grant as the public client `client_id` (code or refresh), with a DPoP
    /// proof of `key` when DPoP is used; the tokens' binding is checked against `key`.
    async fn public_token_grant(
        &self,
        meta: &ProviderMetadata,
        client_id: &str,
        key: &SigningKey,
        grant: &[(&str, &str)],
    ) -> Result<CodeTokens, OidcError> {
        let auth = ClientAuth::Public(client_id);
        let answer = self
            .with_retries(Endpoint::Token, Repeatable::IfNotProcessed, move || {
                self.token_answer(meta, auth, key, grant)
            })
            .await?;
        let tokens = parse_token_answer(&answer, self.now())?;
        check_dpop_binding(self, meta, &tokens, key)?;
        Ok(CodeTokens {
            tokens,
            id_token: read_id_token(&answer)?,
        })
    }

    /// RFC 7009: revokes `token` (a refresh token revokes its grant at most IDPs) as the public
    /// client `client_id`. `Ok(false)` when the IDP advertises no revocation endpoint.
    pub async fn revoke(
        &self,
        meta: &ProviderMetadata,
        client_id: &str,
        token: &SecretString,
        token_type_hint: &str,
    ) -> Result<bool, OidcError> {
        let Some(endpoint) = meta.revocation_endpoint.as_deref() else {
            return Ok(false);
        };
        let transport = &self.inner.transport;
        let url = &transport.endpoint_url(endpoint, "revocation_endpoint")?;
        let form = &[
            ("token", token.expose()),
            ("token_type_hint", token_type_hint),
            ("client_id", client_id),
        ];
        let answer = self
            .with_retries(
                Endpoint::Token,
                Repeatable::IfNotProcessed,
                move || async move {
                    let request = transport.http().post(url.clone()).form(form);
                    transport.send(Endpoint::Token, url, request).await
                },
            )
            .await?;
        // RFC 7009 §2.2: 200 also for a token that was already invalid.
        if answer.status.is_success() {
            Ok(true)
        } else {
            Err(error_from_answer(&answer))
        }
    }

    /// OIDC Core §3.1.3.7: the ID token's signature against the IDP's JWKS with an accepted
    /// algorithm (never `none`, never HMAC), `iss` equal to the issuer, `aud` containing
    /// `client_id`, `azp` equal to `client_id` when present (and required when there are
    /// several audiences), `exp`/`iat` within the clock tolerance, `sub` present, `nonce`
    /// equal to `nonce` when one was sent, and `auth_time` recent enough for `max_age`.
    /// Every refusal is [`OidcError::InvalidToken`].
    pub async fn verify_id_token(
        &self,
        meta: &ProviderMetadata,
        id_token: &SecretString,
        client_id: &str,
        nonce: Option<&SecretString>,
        max_age: Option<u64>,
    ) -> Result<VerifiedToken, OidcError> {
        let refused = |why: &str| OidcError::InvalidToken(format!("ID token: {why}"));
        let jwt = self.verified_signature(meta, id_token.expose()).await?;
        if let Some(Value::String(typ)) = jwt.header.get("typ") {
            if !typ.eq_ignore_ascii_case("jwt") {
                return Err(refused("its typ is not an ID token's"));
            }
        }
        let now = self.now();
        let leeway = self.inner.config.clock_tolerance_secs;
        jwt.check(&mc_jose::ClaimChecks {
            issuer: Some(&meta.issuer),
            audience: Some(client_id),
            now,
            leeway,
        })
        .map_err(|e| refused(&e.to_string()))?;
        let audiences = match jwt.claims.get("aud") {
            Some(Value::Array(list)) => list.len(),
            _ => 1,
        };
        match jwt.claim_str("azp") {
            Some(azp) if azp != client_id => return Err(refused("azp names another client")),
            None if audiences > 1 => {
                return Err(refused("several audiences and no azp"));
            }
            _ => {}
        }
        if jwt.claim_i64("iat").is_none() {
            return Err(refused("claim `iat` is missing"));
        }
        let subject = match jwt.claim_str("sub") {
            Some(sub) if !sub.is_empty() => sub.to_string(),
            _ => return Err(refused("claim `sub` is missing")),
        };
        if let Some(nonce) = nonce {
            if jwt.claim_str("nonce") != Some(nonce.expose()) {
                return Err(refused("its nonce is not this request's"));
            }
        }
        if let Some(max_age) = max_age {
            let max_age = i64::try_from(max_age).unwrap_or(i64::MAX);
            match jwt.claim_i64("auth_time") {
                Some(at) if at.saturating_add(max_age).saturating_add(leeway) >= now => {}
                Some(_) => return Err(refused("the login is older than max_age")),
                None => return Err(refused("claim `auth_time` is missing (max_age was asked)")),
            }
        }
        let expires_at = jwt.claim_i64("exp").unwrap_or(now);
        Ok(VerifiedToken {
            claims: jwt.claims,
            expires_at,
            subject: Some(subject),
            source: ClaimsSource::Jwt,
        })
    }
}

/// A `DPoP` token type without DPoP in use is refused; a JWT access token bound by `cnf.jkt`
/// must be bound to our key (read without verifying: the resource verifies the token; this
/// only stops using a token a confused IDP bound to another key).
fn check_dpop_binding(
    client: &OidcClient,
    meta: &ProviderMetadata,
    tokens: &TokenSet,
    key: &SigningKey,
) -> Result<(), OidcError> {
    if tokens.token_type.eq_ignore_ascii_case("dpop") && !client.uses_dpop(meta) {
        return Err(OidcError::InvalidResponse(
            "a DPoP token though no proof was sent".into(),
        ));
    }
    if let Ok(jwt) = mc_jose::Jwt::decode_unverified(tokens.access_token.expose()) {
        crate::dpop::check_binding(&tokens.token_type, &jwt.claims, key)?;
    }
    Ok(())
}

fn read_id_token(answer: &crate::transport::Answer) -> Result<Option<SecretString>, OidcError> {
    #[derive(Deserialize)]
    struct WithIdToken {
        #[serde(default)]
        id_token: Option<SecretString>,
    }
    let raw: WithIdToken = answer.json("token answer")?;
    Ok(raw.id_token.filter(|t| !t.is_empty()))
}

fn random(bytes: usize) -> Result<String, OidcError> {
    mc_jose::random_bytes(bytes)
        .map(|b| mc_jose::b64url_encode(&b))
        .map_err(|_| OidcError::Config("system randomness unavailable".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(iss_supported: bool) -> ProviderMetadata {
        ProviderMetadata {
            issuer: "https://idp.example".into(),
            authorization_response_iss_parameter_supported: iss_supported,
            ..Default::default()
        }
    }

    #[test]
    fn a_redirect_with_code_state_and_iss_gives_the_code() {
        let r = parse_authorization_response(
            "http://127.0.0.1:5000/cb?code=abc&state=s1&iss=https%3A%2F%2Fidp.example",
        )
        .unwrap();
        assert_eq!(r.state.as_deref(), Some("s1"));
        assert_eq!(r.redirect_base, "http://127.0.0.1:5000/cb");
        assert_eq!(r.code_for(&meta(true)).unwrap().expose(), "abc");
        assert!(!format!("{r:?}").contains("abc"));
    }

    #[test]
    fn iss_must_match_whenever_present_and_be_present_when_promised() {
        let other = parse_authorization_response(
            "http://127.0.0.1/cb?code=abc&state=s&iss=https%3A%2F%2Fevil.example",
        )
        .unwrap();
        assert_eq!(
            other.code_for(&meta(false)),
            Err(AuthorizationError::IssuerMismatch)
        );
        let missing = parse_authorization_response("http://127.0.0.1/cb?code=abc&state=s").unwrap();
        assert_eq!(
            missing.code_for(&meta(true)),
            Err(AuthorizationError::IssuerMismatch)
        );
        assert!(missing.code_for(&meta(false)).is_ok());
    }

    #[test]
    fn errors_map_to_what_the_app_should_do() {
        let error = |query: &str| {
            parse_authorization_response(&format!("http://127.0.0.1/cb?state=s&{query}"))
                .unwrap()
                .code_for(&meta(false))
                .unwrap_err()
        };
        assert!(matches!(
            error("error=access_denied"),
            AuthorizationError::Denied { .. }
        ));
        assert!(matches!(
            error("error=access_denied&error_description=User+cancelled+the+login"),
            AuthorizationError::Cancelled { .. }
        ));
        assert!(matches!(
            error("error=login_required"),
            AuthorizationError::InteractionRequired { .. }
        ));
        assert!(matches!(
            error("error=interaction_required"),
            AuthorizationError::InteractionRequired { .. }
        ));
        match error("error=server_error&error_description=eyJhbGciOi.secret.x") {
            AuthorizationError::Other { code, idp_says } => {
                assert_eq!(code, "server_error");
                assert!(!idp_says.unwrap_or_default().contains("eyJhbGciOi.secret"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hostile_redirects_are_refused() {
        for bad in [
            "not a url",
            "http://127.0.0.1/cb?state=s",
            "http://127.0.0.1/cb?code=a&code=b&state=s",
            "http://127.0.0.1/cb?code=a&state=s&state=t",
        ] {
            assert!(
                matches!(
                    parse_authorization_response(bad),
                    Err(AuthorizationError::Malformed(_))
                ),
                "{bad}"
            );
        }
        let empty = parse_authorization_response("http://127.0.0.1/cb?code=&state=s").unwrap();
        assert!(empty.code_for(&meta(false)).is_err());
    }

    #[test]
    fn step_up_challenges_are_read_and_others_ignored() {
        use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
        let headers = |value: &str| {
            let mut map = HeaderMap::new();
            map.insert(WWW_AUTHENTICATE, HeaderValue::from_str(value).unwrap());
            map
        };
        let challenge = step_up_challenge(&headers(
            r#"Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="urn:mc:acr:strong", max_age=300"#,
        ))
        .unwrap();
        assert_eq!(challenge.acr_values.as_deref(), Some("urn:mc:acr:strong"));
        assert_eq!(challenge.max_age, Some(300));
        assert_eq!(
            step_up_challenge(&headers(r#"DPoP error="insufficient_user_authentication""#)),
            Some(StepUpChallenge::default())
        );
        for other in [
            r#"Bearer error="invalid_token""#,
            r#"DPoP error="use_dpop_nonce""#,
            "Basic realm=\"x\"",
            r#"Bearer error="insufficient_user_authentication"#,
        ] {
            let parsed = step_up_challenge(&headers(other));
            assert!(
                parsed.is_none() || other.ends_with("authentication"),
                "{other}: {parsed:?}"
            );
        }
        // a hostile max_age is dropped, not trusted
        let odd = step_up_challenge(&headers(
            r#"Bearer error="insufficient_user_authentication", max_age="-5", acr_values="a""#,
        ))
        .unwrap();
        assert_eq!(odd.max_age, None);
        assert!(step_up_challenge(&HeaderMap::new()).is_none());
    }

    #[test]
    fn a_fragment_response_is_read_when_the_query_has_none() {
        let r = parse_authorization_response("com.example.app:/cb?x=1#code=abc&state=s").unwrap();
        assert_eq!(r.state.as_deref(), Some("s"));
    }
}
