//! The logged-in user: the unlocked device key, the IDP metadata and the device ("internal")
//! access token (for an identified user: its access token, renewed with its refresh token,
//! see [`IdentifiedCredential`]). Created by enrollment or offline login, owned by the login actor, which
//! publishes it in the [`SessionSlot`] read by the token-exchange and HTTP actors and the
//! cached-token fast path. The device token never leaves the
//! runtime; apps only see its claims. An identified user's refreshes (its own, and the
//! narrowed ones that get a mapped audience's token) run one at a time under the session's
//! token lock, each storing a rotated refresh token before its answer is used.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::Addr;
use mc_events::UserIdentifier;
use mc_jose::SigningKey;
use mc_oidc::{OidcClient, ProviderMetadata, TokenSet, VerifiedToken};
use mc_secret::SecretString;
use mc_store::SealingKey;

use crate::actors::storage::{self, ReplaceRefreshToken, StorageActor};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::failure::{Failure, Step};

/// The session the login actor published: only the login actor sets or clears it.
#[derive(Clone, Default)]
pub struct SessionSlot(Arc<std::sync::RwLock<Option<Arc<Session>>>>);

impl SessionSlot {
    pub fn get(&self) -> Option<Arc<Session>> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set(&self, session: Option<Arc<Session>>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = session;
    }
}

pub struct Session {
    pub user: UserIdentifier,
    /// The MC-SDK clientId the user enrolled with (never a valid exchange audience).
    pub enrollment_client_id: String,
    /// The OAuth client_id the device authenticates as: an anonymous device's registration
    /// client_id (its `user.user_id` is its `sub`), an identified user's public client.
    pub client_id: String,
    /// `sub` of the device token the session started with: every renewal must name it.
    device_subject: Option<String>,
    pub tenant_id: String,
    pub server_url: String,
    pub key: Arc<SigningKey>,
    pub metadata: Arc<ProviderMetadata>,
    /// Claims of the current device token, as strings (GetIamAccessTokenClaims).
    pub claims: std::sync::Mutex<BTreeMap<String, String>>,
    /// Held while the device token is refreshed, so concurrent exchanges refresh it once.
    device_token: Mutex<TokenSet>,
    /// `Some` for an identified user: its access token is renewed with the refresh token,
    /// not by `client_credentials`.
    pub identified: Option<IdentifiedCredential>,
}

/// What renews an identified user's access token: the refresh token (in memory, and sealed
/// in the store), and the key that stores a rotated one before it is used.
pub struct IdentifiedCredential {
    /// The IDP's public native client the user logged in with.
    pub client_id: String,
    /// The redirect URI of the login, when this session came from one (GetInformation).
    pub redirect_uri: Option<String>,
    refresh_token: std::sync::Mutex<Option<SecretString>>,
    sealing_key: Arc<SealingKey>,
    storage: Addr<StorageActor>,
    /// The app's audience → scope mapping when this session began (see
    /// [`AudienceScopes`](crate::AudienceScopes)): a mapped audience's token comes from a
    /// narrowed refresh, and with any mapping the user's own refreshes ask for `openid` only.
    audience_scopes: Arc<BTreeMap<String, String>>,
}

impl IdentifiedCredential {
    pub fn new(
        client_id: String,
        redirect_uri: Option<String>,
        refresh_token: Option<SecretString>,
        sealing_key: Arc<SealingKey>,
        storage: Addr<StorageActor>,
        audience_scopes: Arc<BTreeMap<String, String>>,
    ) -> Self {
        Self {
            client_id,
            redirect_uri,
            refresh_token: std::sync::Mutex::new(refresh_token),
            sealing_key,
            storage,
            audience_scopes,
        }
    }

    /// The scope that brings `audience` into this user's access token, when the app mapped one.
    pub fn audience_scope(&self, audience: &str) -> Option<&str> {
        self.audience_scopes.get(audience).map(String::as_str)
    }

    fn current(&self) -> Option<SecretString> {
        self.refresh_token
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }
}

/// The scope of an identified user's own refreshes (OfflineLogin, its internal token): none
/// (the whole grant) unless the app mapped audience scopes, then `openid` only, so the
/// internal token carries no API audience (the IDP adds its default scopes).
pub fn own_refresh_scope(audience_scopes: &BTreeMap<String, String>) -> Option<&'static str> {
    (!audience_scopes.is_empty()).then_some(OWN_SCOPE)
}

const OWN_SCOPE: &str = "openid";

/// The refresh grant with `refresh_token` (narrowed to `scope` when given); a rotated
/// refresh token is committed to the store BEFORE the new tokens are returned, so a kill at
/// any point leaves the old token (which the IDP may have invalidated: then the next login is
/// a clear LOGIN_REQUIRED) or the new one.
#[allow(clippy::too_many_arguments)]
pub async fn refresh_identified(
    oidc: &OidcClient,
    metadata: &ProviderMetadata,
    client_id: &str,
    key: &SigningKey,
    refresh_token: &SecretString,
    scope: Option<&str>,
    sealing_key: &Arc<SealingKey>,
    storage: &Addr<StorageActor>,
) -> Result<(TokenSet, Option<SecretString>), Failure> {
    let answer = oidc
        .refresh(metadata, client_id, key, refresh_token, scope)
        .await
        .map_err(|e| Failure::from_refresh(&e))?;
    let rotated = answer
        .tokens
        .refresh_token
        .clone()
        .filter(|new| new != refresh_token);
    if let Some(new) = &rotated {
        storage::call(
            storage,
            ReplaceRefreshToken {
                sealing_key: Arc::clone(sealing_key),
                refresh_token: new.clone(),
            },
        )
        .await?;
    }
    Ok((answer.tokens, answer.id_token))
}

impl IdentifiedCredential {
    /// [`refresh_identified`] with this credential, then the rotated refresh token kept in
    /// memory too. The caller holds the session's token lock.
    async fn refresh(
        &self,
        oidc: &OidcClient,
        session: &Session,
        refresh_token: &SecretString,
        scope: Option<&str>,
    ) -> Result<TokenSet, Failure> {
        let (fresh, _) = refresh_identified(
            oidc,
            &session.metadata,
            &self.client_id,
            &session.key,
            refresh_token,
            scope,
            &self.sealing_key,
            &self.storage,
        )
        .await?;
        if let (Some(new), Ok(mut slot)) = (fresh.refresh_token.clone(), self.refresh_token.lock())
        {
            *slot = Some(new);
        }
        Ok(fresh)
    }
}

fn cleared() -> Failure {
    Failure::new(
        mc_events::StatusType::LoginRequired,
        mc_events::error_code::CREDENTIAL_CLEARED,
        "the tokens of this session were cleared; log in at the IDP again",
    )
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .field("enrollment_client_id", &self.enrollment_client_id)
            .finish_non_exhaustive()
    }
}

/// The parts of a session that come from the store or the enrollment.
pub struct SessionParts {
    pub user: UserIdentifier,
    /// The OAuth client the device authenticates as (an anonymous device: its registration
    /// client_id; no longer its `user.user_id`, which is its `sub`).
    pub client_id: String,
    pub enrollment_client_id: String,
    pub server_url: String,
    pub key: Arc<SigningKey>,
    pub metadata: Arc<ProviderMetadata>,
}

impl Session {
    /// Logs in with the device key (client_credentials + private_key_jwt) and verifies the
    /// token: the common end of enrollment and offline login.
    pub async fn establish(
        oidc: &OidcClient,
        parts: SessionParts,
        step: Step,
    ) -> Result<(Session, VerifiedToken), Failure> {
        let client_id = parts.client_id;
        let (tokens, verified) = login(oidc, &parts.metadata, &client_id, &parts.key, step).await?;
        let session = Session {
            device_subject: verified.subject.clone(),
            tenant_id: parts.user.tenant_id.clone(),
            user: parts.user,
            enrollment_client_id: parts.enrollment_client_id,
            client_id,
            server_url: parts.server_url,
            key: parts.key,
            metadata: parts.metadata,
            claims: std::sync::Mutex::new(claims_as_strings(&verified)),
            device_token: Mutex::new(tokens),
            identified: None,
        };
        Ok((session, verified))
    }

    /// An identified user's session from tokens already obtained (code redemption or
    /// refresh) and the verified claims (the ID token's).
    pub fn identified(
        parts: SessionParts,
        tokens: TokenSet,
        claims: BTreeMap<String, String>,
        credential: IdentifiedCredential,
    ) -> Session {
        Session {
            device_subject: None,
            tenant_id: parts.user.tenant_id.clone(),
            client_id: credential.client_id.clone(),
            user: parts.user,
            enrollment_client_id: parts.enrollment_client_id,
            server_url: parts.server_url,
            key: parts.key,
            metadata: parts.metadata,
            claims: std::sync::Mutex::new(claims),
            device_token: Mutex::new(tokens),
            identified: Some(credential),
        }
    }

    /// ClearIamTokenCache CLEAR_ACCESS_AND_REFRESH / CLEAR_ALL: forgets the in-memory access
    /// token (the next use renews it) and, for CLEAR_ALL, the in-memory refresh token.
    pub async fn drop_tokens(&self, refresh_too: bool) {
        self.device_token.lock().await.expires_at = 0;
        if let (true, Some(identified)) = (refresh_too, &self.identified) {
            if let Ok(mut token) = identified.refresh_token.lock() {
                *token = None;
            }
        }
    }

    /// The refresh token in memory (identified users), for revocation at logout.
    pub fn refresh_token(&self) -> Option<SecretString> {
        self.identified
            .as_ref()
            .and_then(IdentifiedCredential::current)
    }

    /// The device token, refreshed first when it has less than `margin_secs` left. Only one
    /// refresh runs at a time; other callers wait for its result.
    pub async fn device_token(
        &self,
        oidc: &OidcClient,
        margin_secs: i64,
    ) -> Result<TokenSet, Failure> {
        let mut current = self.device_token.lock().await;
        if current.expires_at - margin_secs > oidc.now() {
            return Ok(current.clone());
        }
        if let Some(identified) = &self.identified {
            let Some(refresh_token) = identified.current() else {
                return Err(cleared());
            };
            let scope = own_refresh_scope(&identified.audience_scopes);
            let fresh = identified
                .refresh(oidc, self, &refresh_token, scope)
                .await?;
            *current = fresh.clone();
            return Ok(fresh);
        }
        let (fresh, verified) = login(
            oidc,
            &self.metadata,
            &self.client_id,
            &self.key,
            Step::Exchange,
        )
        .await?;
        // The renewed token must name the user this session logged in as.
        if let Some(subject) = &self.device_subject {
            same_subject(subject, &verified)?;
        }
        if let Ok(mut claims) = self.claims.lock() {
            *claims = claims_as_strings(&verified);
        }
        *current = fresh.clone();
        Ok(fresh)
    }

    /// An identified user's access token for `audience` by the refresh grant narrowed to
    /// `openid` and `scope` (the audience's scope): for IDPs whose public clients may not
    /// exchange. Runs under the same lock as the user's own refreshes (one refresh token in
    /// use at a time: a rotated one is stored, then kept, before the next refresh). The
    /// session's own token is left as it was; the caller verifies the answer is for
    /// `audience`.
    pub async fn audience_token(
        &self,
        oidc: &OidcClient,
        scope: &str,
    ) -> Result<TokenSet, Failure> {
        let Some(identified) = &self.identified else {
            return Err(Failure::internal(
                "an audience scope is only used for an identified user",
            ));
        };
        let _own = self.device_token.lock().await;
        let Some(refresh_token) = identified.current() else {
            return Err(cleared());
        };
        let narrowed = format!("{OWN_SCOPE} {scope}");
        identified
            .refresh(oidc, self, &refresh_token, Some(&narrowed))
            .await
            .map_err(|failure| {
                // RFC 6749 §5.2 `invalid_scope` (mc-oidc's `Rejected` names the OAuth error
                // code this way): the grant lacks the scope, a login made before the app
                // mapped it. A new login asks for it.
                if failure.description.contains("OAuth error `invalid_scope`") {
                    Failure::new(
                        mc_events::StatusType::LoginRequired,
                        mc_events::error_code::REFRESH_TOKEN_REJECTED,
                        format!(
                            "the user's grant does not cover the scope `{scope}` (it logged in before the app mapped it); log in at the IDP again (CreateAuthorizationRequestEvent asks for it)"
                        ),
                    )
                    .with_next_action(Some(mc_events::NextAction::LogIn))
                } else {
                    failure
                }
            })
    }

    pub fn claims(&self) -> BTreeMap<String, String> {
        self.claims
            .lock()
            .map(|claims| claims.clone())
            .unwrap_or_default()
    }
}

async fn login(
    oidc: &OidcClient,
    metadata: &ProviderMetadata,
    client_id: &str,
    key: &SigningKey,
    step: Step,
) -> Result<(TokenSet, VerifiedToken), Failure> {
    let tokens = oidc
        .client_credentials(metadata, client_id, key)
        .await
        .map_err(|e| Failure::from_oidc(&e, step))?;
    // Also checks that the token is issued to this device's client and, when DPoP-bound,
    // bound to this device's key (cnf.jkt); an opaque token is introspected when possible.
    let verified = oidc
        .verify_device_token(metadata, &tokens, key, client_id)
        .await
        .map_err(|e| Failure::from_oidc(&e, step))?;
    // Never kept past the expiry the IDP reported for it (JWT `exp`, introspection `exp`).
    let tokens = TokenSet {
        expires_at: tokens.expires_at.min(verified.expires_at),
        ..tokens
    };
    Ok((tokens, verified))
}

/// A verified token must name `expected` (the stored `userId`, or the `sub` the session
/// started with) when it names anyone: another `sub` means the IDP swapped identities, and
/// the login is refused (`SUBJECT_CHANGED`) before anything is stored. A token without `sub`
/// (opaque, no introspection) cannot be compared and passes.
pub fn same_subject(expected: &str, verified: &VerifiedToken) -> Result<(), Failure> {
    match verified.subject.as_deref() {
        Some(subject) if subject != expected => Err(Failure::new(
            mc_events::StatusType::InvalidToken,
            mc_events::error_code::SUBJECT_CHANGED,
            "the IDP's token names another user than the one stored on this device; nothing \
             was stored: delete this user (DeleteUserEvent) and enroll again",
        )),
        _ => Ok(()),
    }
}

/// Claims as a map of strings, as the MC-SDK hands them out: strings stay as they are, other
/// values are their JSON text.
pub fn claims_as_strings(token: &VerifiedToken) -> BTreeMap<String, String> {
    token
        .claims
        .iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (name.clone(), text)
        })
        .collect()
}
