//! The logged-in user: the unlocked device key, the IDP metadata and the device ("internal")
//! access token. Created by enrollment or offline login, owned by the login actor, which
//! publishes it in the [`SessionSlot`] read by the token-exchange and HTTP actors and the
//! cached-token fast path. The device token never leaves the
//! runtime; apps only see its claims.

use std::collections::BTreeMap;
use std::sync::Arc;

use mc_events::UserIdentifier;
use mc_jose::SigningKey;
use mc_oidc::{OidcClient, ProviderMetadata, TokenSet, VerifiedToken};
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
    /// The OAuth client_id the IDP assigned to this device (= `user.user_id`).
    pub client_id: String,
    pub tenant_id: String,
    pub server_url: String,
    pub key: Arc<SigningKey>,
    pub metadata: Arc<ProviderMetadata>,
    /// Claims of the current device token, as strings (GetIamAccessTokenClaims).
    pub claims: std::sync::Mutex<BTreeMap<String, String>>,
    /// Held while the device token is refreshed, so concurrent exchanges refresh it once.
    device_token: Mutex<TokenSet>,
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
        let client_id = parts.user.user_id.clone();
        let (tokens, verified) = login(oidc, &parts.metadata, &client_id, &parts.key, step).await?;
        let session = Session {
            tenant_id: parts.user.tenant_id.clone(),
            user: parts.user,
            enrollment_client_id: parts.enrollment_client_id,
            client_id,
            server_url: parts.server_url,
            key: parts.key,
            metadata: parts.metadata,
            claims: std::sync::Mutex::new(claims_as_strings(&verified)),
            device_token: Mutex::new(tokens),
        };
        Ok((session, verified))
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
        let (fresh, verified) = login(
            oidc,
            &self.metadata,
            &self.client_id,
            &self.key,
            Step::Exchange,
        )
        .await?;
        if let Ok(mut claims) = self.claims.lock() {
            *claims = claims_as_strings(&verified);
        }
        *current = fresh.clone();
        Ok(fresh)
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
