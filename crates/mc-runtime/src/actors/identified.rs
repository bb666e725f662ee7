//! Identified users, handled by the login actor (kept apart from `login.rs` so the anonymous
//! half stays readable): CreateAuthorizationRequestEvent (the pending requests live here, in
//! memory: at most [`MAX_PENDING`], each for [`PENDING_LIFETIME`], single use; Restart
//! forgets them), SetAuthorisationCodeEvent (check the redirect, redeem the code, verify the
//! ID token, store the user with its refresh token, log in; upgrade an anonymous device of
//! the tenant), the identified half of OfflineLogin ([`log_in_identified`]) and the stored
//! credential's part of ClearIamTokenCache ([`ClearCredentials`]).
//!
//! Nothing is stored before the code is redeemed and the ID token verified: a wrong state,
//! issuer, code or ID token leaves the store as it was.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use mc_events::*;
use mc_jose::SigningKey;
use mc_oidc::{
    parse_authorization_response, AuthorizationParams, AuthorizationResponse, OidcClient,
    PendingAuthorization, ProviderMetadata,
};
use mc_store::{EnrolledUser, Protection, UnlockedUser, UserId, UserSecrets};
use tracing::Instrument;

use super::enrollment::delete_user;
use super::login::{protection_for, store_id, LoginActor};
use super::storage::{self, ClearCredential, ListUsers, SaveIdentifiedUser, StorageActor};
use super::token_exchange::ClearCache;
use super::Admitted;
use crate::failure::{Failure, Step};
use crate::reducer::Outcome;
use crate::session::{
    claims_as_strings, own_refresh_scope, refresh_identified, IdentifiedCredential, Session,
    SessionParts,
};

/// How long an authorization request waits for its redirect.
pub const PENDING_LIFETIME: Duration = Duration::from_secs(600);
/// At most this many authorization requests wait at once; a new one drops the oldest.
pub const MAX_PENDING: usize = 16;

/// An authorization request waiting for SetAuthorisationCodeEvent.
struct PendingRequest {
    pending: PendingAuthorization,
    tenant_id: String,
    metadata: Arc<ProviderMetadata>,
    /// The key the code is bound to (`dpop_jkt`): the anonymous device's when this upgrades
    /// the logged-in anonymous user of the tenant, else a new one.
    key: Arc<SigningKey>,
    created: Instant,
}

/// The pending authorization requests, by `state`.
#[derive(Default)]
pub struct PendingAuthorizations(HashMap<String, PendingRequest>);

impl PendingAuthorizations {
    fn insert(&mut self, request: PendingRequest) {
        self.purge();
        while self.0.len() >= MAX_PENDING {
            let oldest = self
                .0
                .iter()
                .min_by_key(|(_, r)| r.created)
                .map(|(state, _)| state.clone());
            match oldest {
                Some(state) => self.0.remove(&state),
                None => break,
            };
        }
        self.0.insert(request.pending.state.clone(), request);
    }

    /// The request of `state`, removed: a state is used once, whatever the outcome.
    fn take(&mut self, state: &str) -> Option<PendingRequest> {
        self.purge();
        self.0.remove(state)
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    fn purge(&mut self) {
        self.0.retain(|_, r| r.created.elapsed() < PENDING_LIFETIME);
    }
}

impl Handler<Admitted<CreateAuthorizationRequestEvent>> for LoginActor {
    type Result = ResponseActFuture<Self, CreateAuthorizationRequestResultEvent>;

    fn handle(
        &mut self,
        msg: Admitted<CreateAuthorizationRequestEvent>,
        _: &mut Self::Context,
    ) -> Self::Result {
        let event = msg.event;
        let oidc = self.oidc.clone();
        let issuer = oidc.issuer_for(&self.config.server_url, &event.tenant_id);
        // Upgrade: bind the code to the anonymous device's key, which the identified user
        // keeps: the logged-in session's, else that of an anonymous user of the tenant on
        // this device, unlocked now (a password-protected one must log in first: this
        // request carries no password).
        let session_key = self
            .session
            .get()
            .filter(|s| s.tenant_id == event.tenant_id && s.identified.is_none())
            .map(|s| Arc::clone(&s.key));
        let anonymous_unlock = match session_key {
            Some(_) => None,
            None => match self.anonymous_of(&event.tenant_id) {
                Some(user) => match self.anonymous_key_unlock(&user) {
                    Ok(unlock) => Some((user, unlock)),
                    Err(failure) => {
                        return Box::pin(fut::ready(CreateAuthorizationRequestResultEvent {
                            info: failure.info(),
                            ..Default::default()
                        }))
                    }
                },
                None => None,
            },
        };
        let storage = self.storage.clone();
        let params = AuthorizationParams {
            client_id: event.client_id,
            redirect_uri: event.redirect_uri,
            scope: with_audience_scopes(event.scope, &self.config.audience_scopes.current()),
            acr_values: event.acr_values,
            login_hint: event.login_hint,
            prompt: event.prompt,
            max_age: event.max_age,
        };
        let tenant_id = event.tenant_id;
        let work = async move {
            let metadata = oidc
                .discover(&issuer)
                .await
                .map_err(|e| Failure::from_oidc(&e, Step::Login))?;
            let key = match (session_key, anonymous_unlock) {
                (Some(key), _) => key,
                (None, Some((user, unlock))) => {
                    match anonymous_device_key(&storage, user, unlock, oidc.now()).await {
                        Ok(key) => Arc::new(key),
                        // CLEAR_OFFLINE destroyed it: there is no key to keep.
                        Err(failure) if failure.code == error_code::CREDENTIAL_CLEARED => {
                            Arc::new(new_device_key()?)
                        }
                        Err(failure) => return Err(failure),
                    }
                }
                (None, None) => Arc::new(new_device_key()?),
            };
            let start = oidc
                .start_authorization(&metadata, &params, &key)
                .await
                .map_err(|e| Failure::from_oidc(&e, Step::Login))?;
            Ok::<_, Failure>((start, Arc::new(metadata), key))
        }
        .instrument(msg.admission.span);
        Box::pin(
            fut::wrap_future::<_, Self>(work).map(move |result, act, _| match result {
                Ok((start, metadata, key)) => {
                    let state = start.pending.state.clone();
                    act.pending.insert(PendingRequest {
                        pending: start.pending,
                        tenant_id,
                        metadata,
                        key,
                        created: Instant::now(),
                    });
                    CreateAuthorizationRequestResultEvent {
                        info: ResultInfo::ok(),
                        authorization_url: start.url,
                        state,
                    }
                }
                Err(failure) => CreateAuthorizationRequestResultEvent {
                    info: failure.info(),
                    ..Default::default()
                },
            }),
        )
    }
}

impl Handler<Admitted<SetAuthorisationCodeEvent>> for LoginActor {
    type Result = ResponseActFuture<Self, StatusResultEvent>;

    fn handle(
        &mut self,
        mut msg: Admitted<SetAuthorisationCodeEvent>,
        _: &mut Self::Context,
    ) -> Self::Result {
        let event = &mut msg.event;
        let prepared = self.prepare_code(event);
        let (response, request, protection) = match prepared {
            Ok(prepared) => prepared,
            Err(failure) => return Box::pin(fut::ready(StatusResultEvent::new(failure.info()))),
        };
        let keep_anonymous = event.keep_anonymous.unwrap_or(false);
        // The anonymous users of this tenant that the identified user replaces (upgrade).
        let anonymous: Vec<UserId> = self
            .users
            .iter()
            .filter(|u| u.id.tenant_id == request.tenant_id && !u.identified)
            .map(|u| u.id.clone())
            .collect();
        let oidc = self.oidc.clone();
        let storage = self.storage.clone();
        let exchange = self.exchange.clone();
        let server_url = self.config.server_url.clone();
        let audience_scopes = self.config.audience_scopes.current();
        let work = async move {
            let login = redeem(
                &oidc,
                &storage,
                &server_url,
                &response,
                &request,
                protection,
                audience_scopes,
            )
            .await?;
            // The IAM tokens exchanged from the user's previous login carry its acr and
            // auth_time (a step-up would keep being refused): they go before the answer.
            if let Some(exchange) = exchange {
                exchange
                    .send(ClearCache {
                        user: login.user.clone(),
                        behavior: ClearBehavior::ClearAll,
                    })
                    .await
                    .map_err(|_| Failure::internal("the token-exchange actor stopped"))?;
            }
            let mut replaced = None;
            for old in anonymous.iter().filter(|old| **old != store_id(&login.user)) {
                let removed = if keep_anonymous {
                    storage::call(&storage, storage::RemoveUser(old.clone()))
                        .await
                        .map(|_| ())
                } else {
                    delete_user(&oidc, &storage, old).await
                };
                match removed {
                    Ok(()) => replaced = Some(super::login::user_identifier(old)),
                    Err(failure) => {
                        tracing::warn!(status = ?failure.status, "could not remove the replaced anonymous user");
                    }
                }
            }
            let users = storage::call(&storage, ListUsers).await?;
            Ok::<_, Failure>((login, replaced, users))
        }
        .instrument(msg.admission.span.clone());
        Box::pin(
            fut::wrap_future::<_, Self>(work).map(move |result, act, _| match result {
                Ok((session, replaced, users)) => {
                    act.set_users(users);
                    act.last_user = Some(store_id(&session.user));
                    act.session.set(Some(Arc::clone(&session)));
                    msg.report.send(Outcome::LoggedIn {
                        user: session.user.clone(),
                        claims: session.claims(),
                        users: act.user_list(),
                    });
                    StatusResultEvent {
                        info: ResultInfo::ok(),
                        replaced_user_identifier: replaced,
                        ..Default::default()
                    }
                }
                Err(failure) => StatusResultEvent::new(failure.info()),
            }),
        )
    }
}

impl LoginActor {
    /// The checks that need no network: the response read from the redirect, its `state`
    /// matching a pending request (taken: single use), the same tenant, client and redirect
    /// URI, and the protection the mode needs.
    fn prepare_code(
        &mut self,
        event: &mut SetAuthorisationCodeEvent,
    ) -> Result<(AuthorizationResponse, PendingRequest, Protection), Failure> {
        let response = match (&event.redirect_url, &event.authorisation_code, &event.state) {
            (Some(url), _, _) => parse_authorization_response(url.expose())
                .map_err(|e| Failure::from_authorization(&e))?,
            (None, Some(code), Some(state)) => AuthorizationResponse {
                code: Some(code.clone()),
                state: Some(state.clone()),
                ..Default::default()
            },
            _ => {
                return Err(Failure::invalid_field(
                    "redirectUrl",
                    "give the redirectUrl, or authorisationCode and state",
                ))
            }
        };
        let unknown = || {
            Failure::new(
                StatusType::InvalidParameter,
                error_code::AUTHORIZATION_REQUEST_UNKNOWN,
                "the state matches no pending authorization request (unknown, already used, older than 10 minutes, or made before a restart); create a new one with CreateAuthorizationRequestEvent",
            )
        };
        let state = response.state.as_deref().ok_or_else(unknown)?;
        let request = self.pending.take(state).ok_or_else(unknown)?;
        let mismatch = |what: &str| {
            Failure::new(
                StatusType::InvalidParameter,
                error_code::AUTHORIZATION_RESPONSE_MISMATCH,
                format!(
                    "the {what} differs from the authorization request's; nothing was redeemed"
                ),
            )
        };
        if request.tenant_id != event.tenant_id {
            return Err(mismatch("tenantId"));
        }
        if request.pending.client_id != event.client_id {
            return Err(mismatch("clientId"));
        }
        if event.redirect_url.is_some() && !same_redirect(&response, &request.pending.redirect_uri)
        {
            return Err(mismatch("redirect URL"));
        }
        let protection = protection_for(
            &self.config,
            event.authentication_mode,
            event.password.take(),
            "password",
        )?;
        Ok((response, request, protection))
    }
}

impl LoginActor {
    /// An anonymous user of `tenant_id` on this device (the upgrade candidate).
    fn anonymous_of(&self, tenant_id: &str) -> Option<UserId> {
        self.users
            .iter()
            .find(|u| u.id.tenant_id == tenant_id && !u.identified)
            .map(|u| u.id.clone())
    }

    /// What unlocks an anonymous user's device key at CreateAuthorizationRequest: nothing
    /// (NO) or a biometric prompt (BIOMETRIC); PASSWORD needs the user logged in first.
    fn anonymous_key_unlock(&self, user: &UserId) -> Result<storage::UnlockWith, Failure> {
        match self.mode_of(user) {
            Some(mode @ (mc_store::StoredAuthMode::Password | mc_store::StoredAuthMode::Pin)) => Err(Failure::new(
                StatusType::InvalidState,
                error_code::INVALID_STATE,
                format!(
                    "the anonymous user {user} of this tenant is protected by a {}; log it in (OfflineLoginEvent) first, so the identified user keeps its device key",
                    if mode == mc_store::StoredAuthMode::Pin { "PIN" } else { "password" }
                ),
            )
            .with_next_action(Some(NextAction::SendFirst {
                request_type: "OfflineLoginEvent".into(),
            }))),
            Some(mc_store::StoredAuthMode::Biometric) => Ok(storage::UnlockWith::Biometric {
                prompt: self.config.biometric_prompt.clone(),
            }),
            _ => Ok(storage::UnlockWith::No),
        }
    }
}

/// The authorization request's scope (default `openid offline_access`) with the scopes of
/// the app's audiences added, so the grant covers the narrowed refreshes that get those
/// audiences' tokens later (an IDP refuses a refresh asking for more than the grant).
fn with_audience_scopes(
    scope: Option<String>,
    audience_scopes: &BTreeMap<String, String>,
) -> Option<String> {
    if audience_scopes.is_empty() {
        return scope;
    }
    let mut scope = scope.unwrap_or_else(|| mc_oidc::DEFAULT_SCOPE.to_string());
    for extra in audience_scopes.values() {
        if !scope.split(' ').any(|s| s == extra) {
            scope.push(' ');
            scope.push_str(extra);
        }
    }
    Some(scope)
}

fn new_device_key() -> Result<SigningKey, Failure> {
    SigningKey::generate()
        .map_err(|e| Failure::internal(format!("device key generation failed: {e}")))
}

/// The device key of the anonymous user `user`, unlocked from the store.
async fn anonymous_device_key(
    storage: &Addr<StorageActor>,
    user: UserId,
    unlock: storage::UnlockWith,
    now: i64,
) -> Result<SigningKey, Failure> {
    let unlocked: UnlockedUser =
        storage::unlock_call(storage, storage::UnlockUserWithKey { user, unlock, now }).await?;
    SigningKey::from_pkcs8(&unlocked.user.secrets.device_key_pkcs8).map_err(|_| {
        Failure::new(
            StatusType::NoTokenDataAvailable,
            error_code::NO_STORED_CREDENTIAL,
            "the anonymous user's stored device key is unusable; enroll it again or delete it",
        )
    })
}

/// The redirect went to the request's redirect URI: the same URL without query and fragment
/// (RFC 8252 §7.3 loopback: the port is part of it, as the app's listener chose it).
fn same_redirect(response: &AuthorizationResponse, redirect_uri: &str) -> bool {
    let Ok(mut expected) = url::Url::parse(redirect_uri) else {
        return false;
    };
    expected.set_query(None);
    expected.set_fragment(None);
    expected.as_str() == response.redirect_base
}

/// Redeems the code, verifies the ID token, stores the user (sub as userId, the refresh token
/// sealed under the mode, the device key kept) and answers its session. Nothing is stored
/// unless every check passed.
async fn redeem(
    oidc: &OidcClient,
    storage: &Addr<StorageActor>,
    server_url: &str,
    response: &AuthorizationResponse,
    request: &PendingRequest,
    protection: Protection,
    audience_scopes: Arc<BTreeMap<String, String>>,
) -> Result<Arc<Session>, Failure> {
    let metadata = &request.metadata;
    let pending = &request.pending;
    let code = response
        .code_for(metadata)
        .map_err(|e| Failure::from_authorization(&e))?;
    let redeemed = oidc
        .redeem_code(metadata, pending, &code, &request.key)
        .await
        .map_err(|e| Failure::from_code_redemption(&e))?;
    let id_token = redeemed.id_token.as_ref().ok_or_else(|| {
        Failure::new(
            StatusType::InvalidToken,
            error_code::INVALID_ID_TOKEN,
            "the IDP answered the code without an ID token; ask for scope openid",
        )
    })?;
    let verified = oidc
        .verify_id_token(
            metadata,
            id_token,
            &pending.client_id,
            Some(&pending.nonce),
            pending.max_age,
        )
        .await
        .map_err(|e| Failure::from_code_redemption(&e))?;
    let subject = verified.subject.clone().unwrap_or_default();
    let id = UserId::new(&request.tenant_id, &subject);
    let refresh_token = redeemed.tokens.refresh_token.clone();
    let record = EnrolledUser {
        id: id.clone(),
        enrollment_client_id: pending.client_id.clone(),
        server_url: server_url.to_string(),
        issuer: metadata.issuer.clone(),
        registration_client_uri: None,
        registration_client_id: None,
        redirect_uri: Some(pending.redirect_uri.clone()),
        authentication_mode: protection.mode(),
        subject: Some(subject.clone()),
        created_at: oidc.now(),
        last_login_at: Some(oidc.now()),
        secrets: UserSecrets {
            device_key_pkcs8: request.key.to_pkcs8(),
            registration_access_token: None,
        },
    };
    // The sealing key for later rotations comes with the save: no second unlock (which in
    // mode BIOMETRIC would prompt the user twice for one login).
    let sealing_key = storage::call(
        storage,
        SaveIdentifiedUser {
            user: record,
            protection,
            refresh_token: refresh_token.clone(),
        },
    )
    .await?;
    let credential = IdentifiedCredential::new(
        pending.client_id.clone(),
        Some(pending.redirect_uri.clone()),
        refresh_token,
        Arc::new(sealing_key),
        storage.clone(),
        audience_scopes,
    );
    let parts = SessionParts {
        user: UserIdentifier::new(&request.tenant_id, &subject),
        client_id: pending.client_id.clone(),
        enrollment_client_id: pending.client_id.clone(),
        server_url: server_url.to_string(),
        key: Arc::clone(&request.key),
        metadata: Arc::clone(metadata),
    };
    Ok(Arc::new(Session::identified(
        parts,
        redeemed.tokens,
        claims_as_strings(&verified),
        credential,
    )))
}

/// OfflineLogin of an identified user: the refresh grant with the stored refresh token (a
/// rotated one is stored before use), the new ID token verified when the IDP sends one.
pub async fn log_in_identified(
    oidc: &OidcClient,
    storage: &Addr<StorageActor>,
    unlocked: UnlockedUser,
    key: Arc<SigningKey>,
    audience_scopes: Arc<BTreeMap<String, String>>,
) -> Result<Arc<Session>, Failure> {
    let record = unlocked.user;
    let Some(refresh_token) = unlocked.refresh_token else {
        return Err(Failure::new(
            StatusType::NoTokenDataAvailable,
            error_code::NO_STORED_CREDENTIAL,
            "this user has no stored refresh token; log in at the IDP (CreateAuthorizationRequestEvent)",
        )
        .with_next_action(Some(NextAction::LogIn)));
    };
    let metadata = oidc
        .discover(&record.issuer)
        .await
        .map_err(|e| Failure::from_oidc(&e, Step::Login))?;
    let client_id = record.enrollment_client_id.clone();
    let sealing_key = Arc::new(unlocked.sealing_key);
    let (tokens, id_token) = refresh_identified(
        oidc,
        &metadata,
        &client_id,
        &key,
        &refresh_token,
        own_refresh_scope(&audience_scopes),
        &sealing_key,
        storage,
    )
    .await?;
    let mut claims = std::collections::BTreeMap::new();
    if let Some(id_token) = &id_token {
        let verified = oidc
            .verify_id_token(&metadata, id_token, &client_id, None, None)
            .await
            .map_err(|e| Failure::from_refresh(&e))?;
        // The same user, or the IDP answered for someone else.
        if verified.subject.as_deref() != Some(record.id.user_id.as_str()) {
            return Err(Failure::new(
                StatusType::InvalidToken,
                error_code::INVALID_ID_TOKEN,
                "the refreshed ID token names another user; log in at the IDP again",
            ));
        }
        claims = claims_as_strings(&verified);
    } else {
        claims.insert("sub".to_string(), record.id.user_id.clone());
    }
    let current = tokens.refresh_token.clone().or(Some(refresh_token));
    let credential = IdentifiedCredential::new(
        client_id,
        record.redirect_uri.clone(),
        current,
        sealing_key,
        storage.clone(),
        audience_scopes,
    );
    let parts = SessionParts {
        user: UserIdentifier::new(&record.id.tenant_id, &record.id.user_id),
        client_id: record.enrollment_client_id.clone(),
        enrollment_client_id: record.enrollment_client_id.clone(),
        server_url: record.server_url.clone(),
        key,
        metadata: Arc::new(metadata),
    };
    Ok(Arc::new(Session::identified(
        parts, tokens, claims, credential,
    )))
}

/// From the token-exchange actor, after it cleared its cache: ClearIamTokenCache's part for
/// the session and the store. CLEAR_ACCESS_AND_REFRESH drops the session's tokens in memory;
/// CLEAR_OFFLINE destroys the stored credential (an identified user's refresh token is
/// revoked at the IDP first when it advertises revocation; an anonymous device's
/// registration is deleted there); CLEAR_ALL both. The user stays listed: a later
/// OfflineLogin answers NO_TOKEN_DATA_AVAILABLE (CREDENTIAL_CLEARED).
#[derive(Message)]
#[rtype(result = "Result<(), Failure>")]
pub struct ClearCredentials {
    pub user: UserIdentifier,
    pub behavior: ClearBehavior,
}

impl Handler<ClearCredentials> for LoginActor {
    type Result = ResponseActFuture<Self, Result<(), Failure>>;

    fn handle(&mut self, msg: ClearCredentials, _: &mut Self::Context) -> Self::Result {
        let session = self.session.get().filter(|s| s.user == msg.user);
        let id = store_id(&msg.user);
        let identified = self.users.iter().find(|u| u.id == id).map(|u| u.identified);
        let oidc = self.oidc.clone();
        let storage = self.storage.clone();
        let behavior = msg.behavior;
        let work = async move {
            let memory = matches!(
                behavior,
                ClearBehavior::ClearAll | ClearBehavior::ClearAccessAndRefresh
            );
            let offline = matches!(
                behavior,
                ClearBehavior::ClearAll | ClearBehavior::ClearOffline
            );
            if offline {
                match (identified, &session) {
                    (Some(true), Some(session)) => revoke(&oidc, session).await,
                    (Some(false), _) => {
                        if let Err(failure) =
                            super::enrollment::delete_registration(&oidc, &storage, &id).await
                        {
                            tracing::warn!(status = ?failure.status, "could not delete the registration at the IDP; clearing the local credential anyway");
                        }
                    }
                    _ => {}
                }
                if identified.is_some() {
                    storage::call(&storage, ClearCredential(id)).await?;
                }
            }
            if let Some(session) = &session {
                if memory || offline {
                    session.drop_tokens(memory).await;
                }
            }
            Ok(())
        };
        Box::pin(fut::wrap_future::<_, Self>(work))
    }
}

/// RFC 7009 at logout: the refresh token (which revokes the grant at most IDPs), best effort.
async fn revoke(oidc: &OidcClient, session: &Session) {
    let (Some(identified), Some(token)) = (&session.identified, session.refresh_token()) else {
        return;
    };
    match oidc
        .revoke(
            &session.metadata,
            &identified.client_id,
            &token,
            "refresh_token",
        )
        .await
    {
        Ok(true) => tracing::debug!("revoked the refresh token at the IDP"),
        Ok(false) => tracing::debug!("the IDP offers no revocation; the token expires on its own"),
        Err(error) => tracing::warn!(%error, "could not revoke the refresh token at the IDP"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(state: &str, age: Duration) -> PendingRequest {
        PendingRequest {
            pending: PendingAuthorization {
                state: state.to_string(),
                nonce: mc_secret::SecretString::new("n"),
                code_verifier: mc_secret::SecretString::new("v"),
                client_id: "mc-native".into(),
                redirect_uri: "http://127.0.0.1:1/cb".into(),
                issuer: "http://127.0.0.1:1".into(),
                max_age: None,
            },
            tenant_id: "demo".into(),
            metadata: Arc::new(ProviderMetadata::default()),
            key: Arc::new(SigningKey::generate().unwrap()),
            created: Instant::now().checked_sub(age).unwrap(),
        }
    }

    #[test]
    fn the_audience_scopes_join_the_requested_scope_once() {
        let none = BTreeMap::new();
        assert_eq!(with_audience_scopes(None, &none), None);
        assert_eq!(
            with_audience_scopes(Some("openid".into()), &none).as_deref(),
            Some("openid")
        );
        let scopes = BTreeMap::from([
            ("demo-api".to_string(), "demo-api-audience".to_string()),
            ("other".to_string(), "demo-api-audience".to_string()),
            ("orders".to_string(), "orders-audience".to_string()),
        ]);
        assert_eq!(
            with_audience_scopes(None, &scopes).as_deref(),
            Some("openid offline_access demo-api-audience orders-audience")
        );
        assert_eq!(
            with_audience_scopes(Some("openid orders-audience".into()), &scopes).as_deref(),
            Some("openid orders-audience demo-api-audience")
        );
    }

    #[test]
    fn a_state_is_taken_once() {
        let mut pending = PendingAuthorizations::default();
        pending.insert(request("s1", Duration::ZERO));
        assert!(pending.take("s1").is_some());
        assert!(pending.take("s1").is_none());
        assert!(pending.take("unknown").is_none());
    }

    #[test]
    fn old_requests_expire_and_the_oldest_makes_room() {
        let mut pending = PendingAuthorizations::default();
        pending.insert(request("old", PENDING_LIFETIME + Duration::from_secs(1)));
        assert!(pending.take("old").is_none(), "expired");
        for n in 0..MAX_PENDING {
            let age = Duration::from_secs(u64::try_from(MAX_PENDING - n).unwrap());
            pending.insert(request(&format!("s{n}"), age));
        }
        pending.insert(request("newest", Duration::ZERO));
        assert_eq!(pending.0.len(), MAX_PENDING);
        assert!(pending.take("s0").is_none(), "the oldest made room");
        assert!(pending.take("s1").is_some());
        assert!(pending.take("newest").is_some());
        pending.clear();
        assert!(pending.take("s2").is_none(), "a restart forgets them");
    }
}
