//! The token-exchange actor: ExchangeIamTokenEvent, ClearIamTokenCacheEvent and
//! DeleteIamTokenByAudienceEvent, and the IAM tokens of the HTTP proxy. It owns the IAM token
//! cache ([`TokenCache`]); it is the cache's only writer.
//!
//! A token comes from the RFC 8693 exchange, except an identified user's token for an
//! audience the app mapped to a scope (`configuration.audienceScopes`, for IDPs that do not
//! exchange a public client's token): the refresh grant narrowed to that scope
//! ([`Session::audience_token`], which stores a rotated refresh token first), cached only once
//! its signature, `aud`, `azp` and `sub` are checked. This actor never writes the store.
//!
//! Tokens are cached per (user, audience) until `token_refresh_margin` before they expire.
//! At most one exchange per (user, audience) runs at a time: callers that ask while one is
//! running wait for its result instead of starting their own (parallel refreshes are how other
//! SDKs log users out).
//!
//! The cache is shared read-only with `MasterController::post`, which answers a fresh hit
//! without an actor hop. Ordering: every change (clear, delete by audience, a user deleted)
//! is made before the request that asked for it is answered, and bumps the cache's epoch; an
//! exchange that started before a change neither stores its token nor lets a later request
//! join it. So no request posted after such an answer gets a token from before it.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use actix::prelude::*;
use mc_events::*;
use mc_oidc::OidcClient;
use mc_secret::SecretString;
use tokio::sync::oneshot;
use tracing::Instrument;

use super::login::{LoginActor, RegistrationGone};
use super::{no_session, Admitted};
use crate::failure::{Failure, Step};
use crate::reducer::Outcome;
use crate::session::{Session, SessionSlot};

/// An IAM access token for one audience. `Debug` never shows the token.
#[derive(Clone, Debug)]
pub struct IamToken {
    pub audience: String,
    pub token: SecretString,
    pub token_type: String,
    /// Server time, Unix seconds.
    pub expires_at: i64,
}

/// The IAM tokens by (user, audience); read by anyone, written by the token-exchange actor.
pub struct TokenCache {
    clock: OidcClient,
    margin_secs: i64,
    inner: RwLock<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    /// Bumped by every removal: an exchange started in an older epoch stores nothing.
    epoch: u64,
    tokens: HashMap<String, IamToken>,
}

/// The cache key of a user: lengths first, so no two (tenant, user) pairs share a prefix.
fn user_prefix(user: &UserIdentifier) -> String {
    format!(
        "{}:{}{}:{}",
        user.tenant_id.len(),
        user.tenant_id,
        user.user_id.len(),
        user.user_id
    )
}

fn cache_key(user: &UserIdentifier, audience: &str) -> String {
    let mut key = user_prefix(user);
    key.push_str(audience);
    key
}

impl TokenCache {
    pub fn new(clock: OidcClient, margin: std::time::Duration) -> Self {
        Self {
            clock,
            margin_secs: i64::try_from(margin.as_secs()).unwrap_or(i64::MAX),
            inner: RwLock::new(CacheInner::default()),
        }
    }

    /// The cached token of `user` for `audience` while it is fresh (more than the refresh
    /// margin before its expiry).
    pub fn fresh(&self, user: &UserIdentifier, audience: &str) -> Option<IamToken> {
        let now = self.clock.now();
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let token = inner.tokens.get(&cache_key(user, audience))?;
        (token.expires_at.saturating_sub(self.margin_secs) > now).then(|| token.clone())
    }

    fn epoch(&self) -> u64 {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .epoch
    }

    /// Stores `token` unless something was removed since `epoch`.
    fn store(&self, epoch: u64, key: String, token: IamToken) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.epoch == epoch {
            inner.tokens.insert(key, token);
        }
    }

    /// Removes the tokens of `user` whose audience `which` selects; answers how many.
    fn remove(&self, user: &UserIdentifier, which: impl Fn(&str) -> bool) -> usize {
        let prefix = user_prefix(user);
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.epoch += 1;
        let before = inner.tokens.len();
        inner
            .tokens
            .retain(|key, _| match key.strip_prefix(&prefix) {
                Some(audience) => !which(audience),
                None => true,
            });
        before - inner.tokens.len()
    }
}

type Waiters = Vec<oneshot::Sender<Result<IamToken, Failure>>>;

/// An exchange under way and the callers waiting for it.
struct Flight {
    id: u64,
    waiters: Waiters,
}

pub struct TokenExchangeActor {
    oidc: OidcClient,
    cache: Arc<TokenCache>,
    session: SessionSlot,
    login: Addr<LoginActor>,
    in_flight: HashMap<String, Flight>,
    /// Flights a removal detached from their key: their waiters still get their result.
    detached: HashMap<u64, Waiters>,
    next_flight: u64,
}

impl TokenExchangeActor {
    pub fn new(
        oidc: OidcClient,
        cache: Arc<TokenCache>,
        session: SessionSlot,
        login: Addr<LoginActor>,
    ) -> Self {
        Self {
            oidc,
            cache,
            session,
            login,
            in_flight: HashMap::new(),
            detached: HashMap::new(),
            next_flight: 0,
        }
    }

    /// Removes tokens of `user` (see [`TokenCache::remove`]) and detaches the user's flights
    /// that `which` selects, so a request after this starts its own exchange.
    fn remove(&mut self, user: &UserIdentifier, which: impl Fn(&str) -> bool) -> usize {
        let prefix = user_prefix(user);
        let keys: Vec<String> = self
            .in_flight
            .keys()
            .filter(|key| key.strip_prefix(&prefix).is_some_and(&which))
            .cloned()
            .collect();
        for key in keys {
            if let Some(flight) = self.in_flight.remove(&key) {
                self.detached.insert(flight.id, flight.waiters);
            }
        }
        self.cache.remove(user, which)
    }

    /// An IAM token of the session's user for `audience`: cached unless `force_update`, else
    /// from the exchange under way for it, else from a new exchange.
    fn token(
        &mut self,
        session: Arc<Session>,
        audience: String,
        force_update: bool,
        span: tracing::Span,
        traceparent: Option<String>,
    ) -> ResponseActFuture<Self, Result<IamToken, Failure>> {
        if audience == session.enrollment_client_id {
            let failure = Failure::invalid_field(
                "audience",
                "the enrollment client is not an exchange audience; name the API's client",
            );
            return Box::pin(fut::ready(Err(failure)));
        }
        if !force_update {
            if let Some(hit) = self.cache.fresh(&session.user, &audience) {
                return Box::pin(fut::ready(Ok(hit)));
            }
        }
        let key = cache_key(&session.user, &audience);
        // Someone is already exchanging for this key: wait for that result.
        if let Some(flight) = self.in_flight.get_mut(&key) {
            let (tx, rx) = oneshot::channel();
            flight.waiters.push(tx);
            return Box::pin(fut::wrap_future(async move {
                rx.await.unwrap_or_else(|_| {
                    Err(Failure::internal(
                        "the exchange in progress was abandoned; retry",
                    ))
                })
            }));
        }
        self.next_flight += 1;
        let flight_id = self.next_flight;
        self.in_flight.insert(
            key.clone(),
            Flight {
                id: flight_id,
                waiters: Vec::new(),
            },
        );
        let epoch = self.cache.epoch();
        let oidc = self.oidc.clone();
        let login = self.login.clone();
        let margin = self.cache.margin_secs;
        let work = async move {
            let result = exchange(&oidc, &session, margin, &audience).await;
            if let Err(failure) = &result {
                if failure.status == StatusType::OfflineNotActivated {
                    // The IDP no longer knows this device: the login actor removes the user
                    // before anyone is answered.
                    let _ = login.send(RegistrationGone(session.user.clone())).await;
                }
            }
            result
        }
        .instrument(span);
        let work = mc_oidc::with_traceparent(traceparent, work);
        Box::pin(fut::wrap_future::<_, Self>(work).map(
            move |result: Result<IamToken, Failure>, act, _| {
                if let Ok(token) = &result {
                    act.cache.store(epoch, key.clone(), token.clone());
                }
                let mut waiters = act.detached.remove(&flight_id).unwrap_or_default();
                if act.in_flight.get(&key).is_some_and(|f| f.id == flight_id) {
                    if let Some(flight) = act.in_flight.remove(&key) {
                        waiters.extend(flight.waiters);
                    }
                }
                for waiter in waiters {
                    let _ = waiter.send(result.clone());
                }
                result
            },
        ))
    }
}

async fn exchange(
    oidc: &OidcClient,
    session: &Session,
    margin: i64,
    audience: &str,
) -> Result<IamToken, Failure> {
    // An audience the app mapped to a scope: the identified user's narrowed refresh.
    if let Some(scope) = session
        .identified
        .as_ref()
        .and_then(|identified| identified.audience_scope(audience))
    {
        return audience_by_refresh(oidc, session, audience, scope).await;
    }
    if let Some(identified) = &session.identified {
        if !may_exchange(&session.metadata) {
            return Err(Failure::new(
                StatusType::InvalidParameter,
                error_code::AUDIENCE_NOT_ALLOWED,
                format!(
                    "the IDP offers no token exchange (grant_types_supported); {}",
                    no_scope_hint(audience, &identified.client_id)
                ),
            )
            .with_next_action(Some(NextAction::ContactSupport)));
        }
    }
    let subject = session.device_token(oidc, margin).await?;
    // An identified user's access token is exchanged by its public native client; a
    // device's by the device's own registration.
    let exchanged = match &session.identified {
        Some(identified) => {
            oidc.exchange_for_user(
                &session.metadata,
                &session.client_id,
                &session.key,
                &subject.access_token,
                audience,
            )
            .await
            .map_err(|e| {
                let mut failure = Failure::from_oidc(&e, Step::Exchange);
                // A refusal of the app's client (Keycloak 26: "Standard token exchange is
                // not enabled for the requested client"): say how to get the token anyway.
                if matches!(
                    failure.status,
                    StatusType::InvalidParameter | StatusType::AccessDenied
                ) {
                    failure.description = format!(
                        "{}; {}",
                        failure.description,
                        no_scope_hint(audience, &identified.client_id)
                    );
                }
                failure
            })
        }
        None => oidc
            .exchange(
                &session.metadata,
                &session.client_id,
                &session.key,
                &subject.access_token,
                audience,
            )
            .await
            .map_err(|e| Failure::from_oidc(&e, Step::Exchange)),
    };
    let tokens = exchanged?;
    Ok(IamToken {
        audience: audience.to_string(),
        token: tokens.access_token,
        token_type: tokens.token_type,
        expires_at: tokens.expires_at,
    })
}

/// Whether the IDP lists the token exchange among its grants (an empty list says nothing).
fn may_exchange(metadata: &mc_oidc::ProviderMetadata) -> bool {
    metadata.grant_types_supported.is_empty()
        || metadata
            .grant_types_supported
            .iter()
            .any(|g| g == mc_oidc::GRANT_TOKEN_EXCHANGE)
}

/// What the app and the IDP's administrator can do when the app's client may not exchange.
fn no_scope_hint(audience: &str, client_id: &str) -> String {
    format!(
        "to get a token for `{audience}` without the exchange, give the client `{client_id}` \
         an optional client scope that puts `{audience}` into `aud` (Keycloak: an Audience \
         mapper) and name it in StartEvent's configuration.audienceScopes \
         (`{audience}=<scope>`), then log in again"
    )
}

/// An identified user's token for `audience` by the refresh grant narrowed to `scope`
/// ([`Session::audience_token`]; the rotated refresh token is stored first). Nothing is
/// cached unless the token verifies (IDP signature, issuer, expiry) and is the user's token
/// for `audience`: `aud` names it, `azp` is the app's client, `sub` the logged-in user.
async fn audience_by_refresh(
    oidc: &OidcClient,
    session: &Session,
    audience: &str,
    scope: &str,
) -> Result<IamToken, Failure> {
    let tokens = session.audience_token(oidc, scope).await?;
    let verified = oidc
        .verify_access_token(&session.metadata, &tokens.access_token)
        .await
        .map_err(|e| {
            Failure::new(
                StatusType::InvalidToken,
                error_code::INVALID_TOKEN,
                format!("the IDP's token for `{audience}` failed verification ({e}); nothing was cached"),
            )
        })?;
    let claim = |name: &str| verified.claims.get(name);
    let names_audience = match claim("aud") {
        Some(serde_json::Value::String(aud)) => aud == audience,
        Some(serde_json::Value::Array(auds)) => auds.iter().any(|a| a == audience),
        _ => false,
    };
    let refuse = |what: String| {
        Err(Failure::new(
            StatusType::InvalidToken,
            error_code::INVALID_TOKEN,
            format!("{what}; nothing was cached"),
        ))
    };
    if !names_audience {
        return refuse(format!(
            "the token the scope `{scope}` brought is not for `{audience}` (its aud does not name it): map `{audience}` to the scope whose audience mapper names it (configuration.audienceScopes), and log the user in again if it logged in before the mapping (its grant lacks the scope)"
        ));
    }
    let client_id = session.identified.as_ref().map(|i| i.client_id.as_str());
    if claim("azp").and_then(|v| v.as_str()) != client_id {
        return refuse(format!(
            "the token for `{audience}` was issued to another client (azp)"
        ));
    }
    if claim("sub").and_then(|v| v.as_str()) != Some(session.user.user_id.as_str()) {
        return refuse(format!(
            "the token for `{audience}` names another user (sub)"
        ));
    }
    Ok(IamToken {
        audience: audience.to_string(),
        token: tokens.access_token,
        token_type: tokens.token_type,
        expires_at: tokens.expires_at.min(verified.expires_at),
    })
}

impl Actor for TokenExchangeActor {
    type Context = Context<Self>;
}

impl Handler<Admitted<ExchangeIamTokenEvent>> for TokenExchangeActor {
    type Result = ResponseActFuture<Self, ExchangeIamTokenResultEvent>;

    fn handle(
        &mut self,
        mut msg: Admitted<ExchangeIamTokenEvent>,
        _: &mut Self::Context,
    ) -> Self::Result {
        let Some(session) = self.session.get() else {
            return Box::pin(fut::ready(ExchangeIamTokenResultEvent {
                info: no_session().info(),
                ..Default::default()
            }));
        };
        let user = session.user.clone();
        let token = self.token(
            session,
            msg.event.audience,
            msg.event.force_update,
            msg.admission.span,
            msg.admission.traceparent,
        );
        Box::pin(token.map(move |result, _, _| match result {
            Ok(token) => ExchangeIamTokenResultEvent {
                info: ResultInfo::ok(),
                audience: Some(token.audience),
                token: Some(token.token),
                expires_at: Some(token.expires_at),
            },
            Err(failure) => {
                if failure.status == StatusType::OfflineNotActivated {
                    msg.report.send(Outcome::CredentialFailed { user });
                }
                ExchangeIamTokenResultEvent {
                    info: failure.info(),
                    ..Default::default()
                }
            }
        }))
    }
}

/// An IAM token for the HTTP proxy: as ExchangeIamTokenEvent, for `session`'s user.
#[derive(Message)]
#[rtype(result = "Result<IamToken, Failure>")]
pub struct Exchange {
    pub session: Arc<Session>,
    pub audience: String,
    /// The request's span, so the exchange's HTTP calls are traced under it.
    pub span: tracing::Span,
    /// The request's W3C `traceparent`, sent on the exchange's IDP requests.
    pub traceparent: Option<String>,
}

impl Handler<Exchange> for TokenExchangeActor {
    type Result = ResponseActFuture<Self, Result<IamToken, Failure>>;

    fn handle(&mut self, msg: Exchange, _: &mut Self::Context) -> Self::Result {
        self.token(msg.session, msg.audience, false, msg.span, msg.traceparent)
    }
}

impl Handler<Admitted<ClearIamTokenCacheEvent>> for TokenExchangeActor {
    type Result = ResponseActFuture<Self, ClearIamTokenCacheResultEvent>;

    /// Every behavior clears the cached IAM tokens (they are access tokens); the login actor
    /// then does the rest of `clearBehavior` for the session and the store
    /// ([`ClearCredentials`](super::identified::ClearCredentials)).
    fn handle(
        &mut self,
        msg: Admitted<ClearIamTokenCacheEvent>,
        _: &mut Self::Context,
    ) -> Self::Result {
        let Some(user) = msg.event.user_identifier.or(msg.admission.user) else {
            let result = ClearIamTokenCacheResultEvent {
                info: no_session().info(),
            };
            return Box::pin(fut::ready(result));
        };
        self.remove(&user, |_| true);
        let login = self.login.clone();
        let clear = super::identified::ClearCredentials {
            user,
            behavior: msg.event.clear_behavior,
        };
        let work = async move {
            let info = match login.send(clear).await {
                Ok(Ok(())) => ResultInfo::ok(),
                Ok(Err(failure)) => failure.info(),
                Err(_) => crate::failure::Failure::component_stopped("login actor").info(),
            };
            ClearIamTokenCacheResultEvent { info }
        }
        .instrument(msg.admission.span);
        Box::pin(fut::wrap_future::<_, Self>(work))
    }
}

impl Handler<Admitted<DeleteIamTokenByAudienceEvent>> for TokenExchangeActor {
    type Result = MessageResult<Admitted<DeleteIamTokenByAudienceEvent>>;

    fn handle(
        &mut self,
        msg: Admitted<DeleteIamTokenByAudienceEvent>,
        _: &mut Self::Context,
    ) -> Self::Result {
        let info = match msg.admission.user {
            Some(user) => {
                let audiences = msg.event.audiences;
                self.remove(&user, |audience| audiences.iter().any(|a| a == audience));
                ResultInfo::ok()
            }
            None => no_session().info(),
        };
        MessageResult(DeleteIamTokenByAudienceResultEvent { info })
    }
}

/// Drops the cached IAM tokens of a user (a user deleted). The device's own credential is
/// untouched.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClearCache {
    pub user: UserIdentifier,
    pub behavior: ClearBehavior,
}

impl Handler<ClearCache> for TokenExchangeActor {
    type Result = ();

    fn handle(&mut self, msg: ClearCache, _: &mut Self::Context) {
        let _ = msg.behavior;
        self.remove(&msg.user, |_| true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> TokenCache {
        let oidc = OidcClient::new(mc_oidc::OidcConfig::default()).expect("a client");
        TokenCache::new(oidc, std::time::Duration::from_secs(30))
    }

    fn token(audience: &str, expires_in: i64) -> IamToken {
        IamToken {
            audience: audience.into(),
            token: SecretString::from("t"),
            token_type: "Bearer".into(),
            expires_at: mc_jose::unix_now() + expires_in,
        }
    }

    #[test]
    fn a_token_is_fresh_until_the_margin_before_its_expiry() {
        let cache = cache();
        let user = UserIdentifier::new("t", "u");
        cache.store(0, cache_key(&user, "api"), token("api", 3600));
        cache.store(0, cache_key(&user, "soon"), token("soon", 10));
        assert!(cache.fresh(&user, "api").is_some());
        assert!(cache.fresh(&user, "soon").is_none(), "inside the margin");
        assert!(cache.fresh(&user, "other").is_none());
    }

    #[test]
    fn an_exchange_from_before_a_removal_stores_nothing() {
        let cache = cache();
        let user = UserIdentifier::new("t", "u");
        let epoch = cache.epoch();
        cache.remove(&user, |_| true);
        cache.store(epoch, cache_key(&user, "api"), token("api", 3600));
        assert!(cache.fresh(&user, "api").is_none());
    }

    #[test]
    fn removal_touches_only_that_user_even_with_lookalike_ids() {
        let cache = cache();
        // Without the lengths in the key, ("a", "bc") and ("ab", "c") would share a prefix.
        let one = UserIdentifier::new("a", "bc");
        let other = UserIdentifier::new("ab", "c");
        let lookalike = UserIdentifier::new("a", "b");
        for user in [&one, &other, &lookalike] {
            cache.store(cache.epoch(), cache_key(user, "api"), token("api", 3600));
        }
        assert_eq!(cache.remove(&lookalike, |_| true), 1);
        assert!(cache.fresh(&one, "api").is_some());
        assert!(cache.fresh(&other, "api").is_some());
        assert!(cache.fresh(&lookalike, "api").is_none());
    }

    #[test]
    fn the_exchange_is_tried_unless_discovery_lists_grants_without_it() {
        let mut metadata = mc_oidc::ProviderMetadata::default();
        assert!(may_exchange(&metadata), "an empty list says nothing");
        metadata.grant_types_supported = vec!["authorization_code".into(), "refresh_token".into()];
        assert!(!may_exchange(&metadata));
        metadata
            .grant_types_supported
            .push(mc_oidc::GRANT_TOKEN_EXCHANGE.into());
        assert!(may_exchange(&metadata));
    }

    #[test]
    fn the_refusal_hint_names_the_client_the_audience_and_the_setting() {
        let hint = no_scope_hint("demo-api", "demo-app");
        for part in ["`demo-api`", "`demo-app`", "configuration.audienceScopes"] {
            assert!(hint.contains(part), "{hint}");
        }
    }

    #[test]
    fn delete_by_audience_removes_only_those_audiences() {
        let cache = cache();
        let user = UserIdentifier::new("t", "u");
        for audience in ["a", "b", "ab"] {
            cache.store(
                cache.epoch(),
                cache_key(&user, audience),
                token(audience, 3600),
            );
        }
        assert_eq!(cache.remove(&user, |audience| audience == "a"), 1);
        assert!(cache.fresh(&user, "a").is_none());
        assert!(cache.fresh(&user, "b").is_some());
        assert!(cache.fresh(&user, "ab").is_some());
    }
}
