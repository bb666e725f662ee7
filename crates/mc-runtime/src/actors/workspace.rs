//! SwitchWorkspaceEvent (the MC-SDK's workspace is a tenant): makes the enrolled user of
//! another tenant the active one, i.e. the user an OfflineLogin without `userIdentifier`
//! logs in and StartLoginEvent names. Handled by the login actor, which owns the user choice
//! and the session.
//!
//! - The choice is stored first (the store's last user, one commit), so a restart keeps it;
//!   when the store refuses, nothing changed.
//! - Then the running session ends: its in-memory tokens go with it, and the IAM tokens
//!   exchanged for its user are dropped from the cache. The state becomes LOGIN_REQUIRED and
//!   StartLoginEvent names the new active user, who logs in with OfflineLoginEvent (its own
//!   mode: password, PIN, biometric or none).
//! - The tenant of the active user (the logged-in one, else the default): OK, nothing changes
//!   (the session stays).
//! - A tenant with no enrolled user on this device: INVALID_USER_ID, UNKNOWN_TENANT.
//! - Several users of the tenant (an anonymous device and an identified user): the one that
//!   logged in last, else the first listed.
//!
//! It is a state-changing request, so it never runs beside an enrollment, a login, a delete or
//! a restart (the controller refuses it with InvalidStateEvent meanwhile).

use actix::prelude::*;
use mc_events::*;
use mc_store::UserId;
use tracing::Instrument;

use super::login::{store_id, user_identifier, LoginActor};
use super::storage::{self, SetLastUser};
use super::token_exchange::ClearCache;
use super::Admitted;
use crate::failure::Failure;
use crate::reducer::Outcome;

impl LoginActor {
    /// The active user: the logged-in one, else the one an OfflineLogin would log in.
    fn active_user(&self) -> Option<UserId> {
        self.session
            .get()
            .map(|session| store_id(&session.user))
            .or_else(|| self.default_user())
    }

    /// The user of `tenant_id` to make active: the one that logged in last, else the first.
    fn user_of_tenant(&self, tenant_id: &str) -> Option<UserId> {
        self.users
            .iter()
            .filter(|u| u.id.tenant_id == tenant_id)
            .max_by_key(|u| (u.last_login_at, std::cmp::Reverse(u.id.clone())))
            .map(|u| u.id.clone())
    }
}

fn result(info: ResultInfo, user: Option<&UserId>) -> SwitchWorkspaceResultEvent {
    SwitchWorkspaceResultEvent {
        info,
        user_identifier: user.map(user_identifier),
        ..Default::default()
    }
}

impl Handler<Admitted<SwitchWorkspaceEvent>> for LoginActor {
    type Result = ResponseActFuture<Self, SwitchWorkspaceResultEvent>;

    fn handle(
        &mut self,
        msg: Admitted<SwitchWorkspaceEvent>,
        _: &mut Self::Context,
    ) -> Self::Result {
        let tenant_id = msg.event.tenant_id;
        let active = self.active_user();
        if let Some(active) = active.as_ref().filter(|a| a.tenant_id == tenant_id) {
            return Box::pin(fut::ready(result(ResultInfo::ok(), Some(active))));
        }
        let Some(target) = self.user_of_tenant(&tenant_id) else {
            let failure = Failure::new(
                StatusType::InvalidUserId,
                error_code::UNKNOWN_TENANT,
                "no enrolled user of this device belongs to this tenantId; nothing changed: \
                 enroll in it first, or pick a tenant from StartResultEvent",
            );
            return Box::pin(fut::ready(result(failure.info(), active.as_ref())));
        };
        let mut report = msg.report;
        let storage = self.storage.clone();
        let chosen = target.clone();
        let work = async move { storage::call(&storage, SetLastUser(chosen)).await }
            .instrument(msg.admission.span);
        Box::pin(
            fut::wrap_future::<_, Self>(work).map(move |stored, act, _| match stored {
                Ok(()) => {
                    act.last_user = Some(target.clone());
                    if let Some(ended) = act.session.get() {
                        act.session.set(None);
                        if let Some(exchange) = &act.exchange {
                            exchange.do_send(ClearCache {
                                user: ended.user.clone(),
                                behavior: ClearBehavior::ClearAccessAndRefresh,
                            });
                        }
                    }
                    tracing::info!(tenant = %target.tenant_id, "switched the active workspace");
                    report.send(Outcome::WorkspaceSwitched {
                        users: act.user_list(),
                    });
                    result(ResultInfo::ok(), Some(&target))
                }
                // Nothing was stored: the active user and the session are as they were.
                Err(failure) => result(failure.info(), act.active_user().as_ref()),
            }),
        )
    }
}
