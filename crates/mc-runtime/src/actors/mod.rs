//! The actors of the bus. Each request type is an actix `Message` answered by its own result
//! event (mc-events' `actix` feature); the controller admits it and sends it, wrapped in
//! [`Admitted`], to the one actor that owns its work:
//!
//! | actor | file | handles | owns |
//! |---|---|---|---|
//! | login | `login.rs` | Start, Restart, OfflineLogin, EnableAuthenticationMode, GetIamAccessTokenClaims, GetInformation | the enrolled users, the user choice, the session |
//! | login (identified users) | `identified.rs` | CreateAuthorizationRequest, SetAuthorisationCode; OfflineLogin and ClearIamTokenCache of identified users | the pending authorization requests |
//! | login (workspaces) | `workspace.rs` | SwitchWorkspace | which tenant's user is the active one |
//! | enrollment | `enrollment.rs` | EnrollAnonymousUser (replace-on-enroll), DeleteUser; the queued IDP deletions (`idp_deletion.rs`) | the registration's life |
//! | token exchange | `token_exchange.rs` | ExchangeIamToken, ClearIamTokenCache, DeleteIamTokenByAudience | the IAM token cache, single-flight |
//! | http proxy | `http_proxy.rs` | CreateHttpCommonRequest | the call, its token, redirects, `max_http_in_flight` |
//! | storage | `storage.rs` | every read and write of enrolled users (its own thread: blocking I/O) | the store |
//!
//! GetStateEvent reads only the controller's state, so the controller answers it itself.
//! An actor whose work changed what the SDK state depends on reports an
//! [`Outcome`](crate::reducer::Outcome) through the envelope's [`Report`] before it answers;
//! the controller runs the reducer on it, then delivers the result.

use actix::prelude::*;
use mc_events::{RequestId, RequestType, SdkState, UserIdentifier};
use tokio::sync::oneshot;

use crate::reducer::Outcome;

pub mod enrollment;
pub mod http_proxy;
pub mod identified;
pub mod idp_deletion;
pub mod login;
pub mod storage;
pub mod token_exchange;
pub mod workspace;

/// What admission decided about a request, for the actor that does its work.
#[derive(Clone, Debug)]
pub struct Admission {
    pub id: RequestId,
    /// The request's span: the actor's protocol steps are traced under it.
    pub span: tracing::Span,
    /// The SDK state the request was admitted in.
    pub state: SdkState,
    /// The user the request is about, where admission chose one (DeleteUser: the named user,
    /// else the logged-in one, else the default; token-cache requests: the logged-in user).
    pub user: Option<UserIdentifier>,
    /// The IDP base URL new enrollments use: `RuntimeConfig::server_url`, or the
    /// `configuration.serverUrl` of the StartEvent.
    pub server_url: String,
    /// The request's W3C `traceparent` (the host's, or one the runtime made up), sent on the
    /// IDP and resource requests made for it.
    pub traceparent: Option<String>,
}

/// A request on its way to its actor. Its answer is the request's own result type, so the
/// request → result pairing of the catalog holds end to end.
pub struct Admitted<E> {
    pub event: E,
    pub admission: Admission,
    pub report: Report,
}

impl<E: RequestType> Message for Admitted<E> {
    type Result = E::Result;
}

/// Where an actor reports the [`Outcome`] of its work, at most once, before it answers.
pub struct Report(Option<oneshot::Sender<Outcome>>);

impl Report {
    /// A report and the receiver the controller reads once the answer arrived.
    pub fn new() -> (Report, oneshot::Receiver<Outcome>) {
        let (tx, rx) = oneshot::channel();
        (Report(Some(tx)), rx)
    }

    /// A report nobody reads (tests, internal calls).
    pub fn none() -> Report {
        Report(None)
    }

    pub fn send(&mut self, outcome: Outcome) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(outcome);
        }
    }
}

/// The failure of a request that needs a logged-in user when there is none.
pub fn no_session() -> crate::failure::Failure {
    crate::failure::Failure::new(
        mc_events::StatusType::LoginRequired,
        mc_events::error_code::INVALID_STATE,
        "no user is logged in; send OfflineLoginEvent",
    )
}
