//! The token-exchange actor: ExchangeIamTokenEvent, ClearIamTokenCacheEvent and
//! DeleteIamTokenByAudienceEvent. It owns the IAM token cache.
//!
//! Tokens are cached per (user, audience) until `token_refresh_margin` before they expire.
//! At most one exchange per (user, audience) runs at a time: callers that ask while one is
//! running wait for its result instead of starting their own (parallel refreshes are how other
//! SDKs log users out). A hit needs no I/O and no other actor.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use mc_events::ClearBehavior;
use mc_oidc::OidcClient;
use mc_secret::SecretString;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::failure::{Failure, Step};
use crate::session::Session;

/// An IAM access token for one audience. `Debug` never shows the token.
#[derive(Clone, Debug)]
pub struct IamToken {
    pub audience: String,
    pub token: SecretString,
    pub token_type: String,
    /// Server time, Unix seconds.
    pub expires_at: i64,
}

type CacheKey = (String, String, String); // tenant, user, audience
type Waiters = Vec<oneshot::Sender<Result<IamToken, Failure>>>;

pub struct TokenExchangeActor {
    oidc: OidcClient,
    margin_secs: i64,
    cache: HashMap<CacheKey, IamToken>,
    in_flight: HashMap<CacheKey, Waiters>,
}

impl TokenExchangeActor {
    pub fn new(oidc: OidcClient, margin: std::time::Duration) -> Self {
        Self {
            oidc,
            margin_secs: margin.as_secs() as i64,
            cache: HashMap::new(),
            in_flight: HashMap::new(),
        }
    }

    fn fresh(&self, key: &CacheKey) -> Option<IamToken> {
        let token = self.cache.get(key)?;
        (token.expires_at - self.margin_secs > self.oidc.now()).then(|| token.clone())
    }
}

impl Actor for TokenExchangeActor {
    type Context = Context<Self>;
}

fn cache_key(session: &Session, audience: &str) -> CacheKey {
    (
        session.user.tenant_id.clone(),
        session.user.user_id.clone(),
        audience.to_string(),
    )
}

/// An IAM token for `audience`, from the cache unless `force_update`.
#[derive(Message)]
#[rtype(result = "Result<IamToken, Failure>")]
pub struct Exchange {
    pub session: Arc<Session>,
    pub audience: String,
    pub force_update: bool,
    /// The request's span, so the exchange's HTTP calls are traced under it.
    pub span: tracing::Span,
}

impl Handler<Exchange> for TokenExchangeActor {
    type Result = ResponseActFuture<Self, Result<IamToken, Failure>>;

    fn handle(&mut self, msg: Exchange, _: &mut Self::Context) -> Self::Result {
        if msg.audience == msg.session.enrollment_client_id {
            let failure = Failure::invalid_field(
                "audience",
                "the enrollment client is not an exchange audience; name the API's client",
            );
            return Box::pin(fut::ready(Err(failure)));
        }
        let key = cache_key(&msg.session, &msg.audience);
        if !msg.force_update {
            if let Some(hit) = self.fresh(&key) {
                return Box::pin(fut::ready(Ok(hit)));
            }
        }
        // Someone is already exchanging for this key: wait for that result.
        if let Some(waiters) = self.in_flight.get_mut(&key) {
            let (tx, rx) = oneshot::channel();
            waiters.push(tx);
            return Box::pin(fut::wrap_future(async move {
                rx.await.unwrap_or_else(|_| {
                    Err(Failure::internal(
                        "the exchange in progress was abandoned; retry",
                    ))
                })
            }));
        }
        self.in_flight.insert(key.clone(), Vec::new());

        let oidc = self.oidc.clone();
        let margin = self.margin_secs;
        let span = msg.span.clone();
        let work = async move {
            let session = &msg.session;
            let subject = session.device_token(&oidc, margin).await?;
            let tokens = oidc
                .exchange(
                    &session.metadata,
                    &session.client_id,
                    &session.key,
                    &subject.access_token,
                    &msg.audience,
                )
                .await
                .map_err(|e| Failure::from_oidc(&e, Step::Exchange))?;
            Ok(IamToken {
                audience: msg.audience,
                token: tokens.access_token,
                token_type: tokens.token_type,
                expires_at: tokens.expires_at,
            })
        }
        .instrument(span);
        Box::pin(fut::wrap_future::<_, Self>(work).map(
            move |result: Result<IamToken, Failure>, act, _| {
                if let Ok(token) = &result {
                    act.cache.insert(key.clone(), token.clone());
                }
                for waiter in act.in_flight.remove(&key).unwrap_or_default() {
                    let _ = waiter.send(result.clone());
                }
                result
            },
        ))
    }
}

/// Drops cached IAM tokens of a user. The device's own credential is untouched: logging out is
/// ClearIamTokenCache then Restart.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClearCache {
    pub tenant_id: String,
    pub user_id: String,
    pub behavior: ClearBehavior,
}

impl Handler<ClearCache> for TokenExchangeActor {
    type Result = ();
    fn handle(&mut self, msg: ClearCache, _: &mut Self::Context) {
        // IAM tokens are access tokens: every behavior clears them (CLEAR_OFFLINE additionally
        // concerns offline credentials, which this runtime does not cache here).
        let _ = msg.behavior;
        self.cache
            .retain(|(tenant, user, _), _| !(tenant == &msg.tenant_id && user == &msg.user_id));
    }
}

/// Drops the cached IAM tokens for these audiences. Answers how many were removed.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct DeleteAudiences {
    pub tenant_id: String,
    pub user_id: String,
    pub audiences: Vec<String>,
}

impl Handler<DeleteAudiences> for TokenExchangeActor {
    type Result = usize;
    fn handle(&mut self, msg: DeleteAudiences, _: &mut Self::Context) -> usize {
        let before = self.cache.len();
        self.cache.retain(|(tenant, user, audience), _| {
            !(tenant == &msg.tenant_id && user == &msg.user_id && msg.audiences.contains(audience))
        });
        before - self.cache.len()
    }
}
