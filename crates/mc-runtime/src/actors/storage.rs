//! The storage actor: the only place that reads or writes the user store. It runs alone on a
//! thread of its own because the store blocks (file I/O, fsync, a PASSWORD unlock's KDF, a
//! BIOMETRIC prompt) and must never stall the other actors. That thread is an actix `Arbiter`
//! ([`start`]): while idle it sleeps in the kernel until a message arrives. (It was a
//! `SyncArbiter`, whose crossbeam channel spins and yields before sleeping: CPU taken from the
//! other threads on every storage call.) Messages are handled one at a time, in the order
//! they were sent.

use std::sync::Arc;

use actix::prelude::*;
use mc_secret::SecretString;
use mc_store::{
    EnrolledUser, IdpDeletion, IdpDeletionId, ManagementSecrets, PendingIdpDeletion, Postponed,
    Protection, SealingKey, StoreError, Unlock, UnlockError, UnlockedUser, UserId, UserStore,
    UserSummary,
};

/// Starts the storage actor on a new thread of its own (call it inside the actix `System`).
/// The thread ends when the actor stops: on [`Close`], or when the system stops.
pub fn start(store: Option<Arc<UserStore>>) -> Addr<StorageActor> {
    let thread = Arbiter::new();
    StorageActor::start_in_arbiter(&thread.handle(), move |_| StorageActor::new(store))
}

pub struct StorageActor {
    /// `None` once closed: the file is released for the next runtime on the same directory.
    store: Option<Arc<UserStore>>,
}

impl StorageActor {
    pub fn new(store: Option<Arc<UserStore>>) -> Self {
        Self { store }
    }

    fn store(&self) -> Result<&UserStore, StoreError> {
        self.store.as_deref().ok_or(StoreError::Closed)
    }
}

/// Closes the store (its file lock is released when this returns) and stops the actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Close;

impl Handler<Close> for StorageActor {
    type Result = ();
    fn handle(&mut self, _: Close, ctx: &mut Self::Context) {
        self.store = None;
        ctx.stop();
    }
}

impl Actor for StorageActor {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        // The thread was started for this actor alone.
        Arbiter::current().stop();
    }
}

/// The enrolled users and the one who logged in last.
#[derive(Message)]
#[rtype(result = "Result<(Vec<UserSummary>, Option<UserId>), StoreError>")]
pub struct ListUsers;

impl Handler<ListUsers> for StorageActor {
    type Result = Result<(Vec<UserSummary>, Option<UserId>), StoreError>;
    fn handle(&mut self, _: ListUsers, _: &mut Self::Context) -> Self::Result {
        let store = self.store()?;
        Ok((store.list_users()?, store.last_user()?))
    }
}

/// Inserts or replaces a user in one transaction, protected as asked, and makes it the last user.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct SaveUser {
    pub user: EnrolledUser,
    pub protection: Protection,
}

impl Handler<SaveUser> for StorageActor {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, msg: SaveUser, _: &mut Self::Context) -> Self::Result {
        self.store()?.put_user(&msg.user, &msg.protection)
    }
}

/// What the app offered to unlock a user: an owned [`Unlock`], so it can travel in a message.
#[derive(Clone, Debug)]
pub enum UnlockWith {
    No,
    Password(SecretString),
    Biometric {
        prompt: String,
    },
    /// Mode PIN (its format already checked by the login actor).
    Pin(SecretString),
}

impl UnlockWith {
    fn as_unlock(&self) -> Unlock<'_> {
        match self {
            UnlockWith::No => Unlock::No,
            UnlockWith::Password(password) => Unlock::Password(password),
            UnlockWith::Biometric { prompt } => Unlock::Biometric { prompt },
            UnlockWith::Pin(pin) => Unlock::Pin(pin),
        }
    }
}

/// The unlock messages, so [`unlock_call`] can tell a PIN's block (PIN_BLOCKED) from a
/// password's (PASSWORD_BLOCKED): the store's error does not say which secret it counted.
pub trait UnlockMessage {
    fn offered(&self) -> &UnlockWith;
}

impl UnlockMessage for UnlockUser {
    fn offered(&self) -> &UnlockWith {
        &self.unlock
    }
}

impl UnlockMessage for UnlockUserWithKey {
    fn offered(&self) -> &UnlockWith {
        &self.unlock
    }
}

impl UnlockMessage for ChangeProtection {
    fn offered(&self) -> &UnlockWith {
        &self.current
    }
}

/// SwitchWorkspaceEvent: makes `0` the last user (the one an OfflineLogin without
/// `userIdentifier` logs in), in one commit, so a restart keeps the choice.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct SetLastUser(pub UserId);

impl Handler<SetLastUser> for StorageActor {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, msg: SetLastUser, _: &mut Self::Context) -> Self::Result {
        self.store()?.set_last_user(&msg.0)
    }
}

/// Unlocks a user's device key (counting wrong passwords durably before checking them).
#[derive(Message)]
#[rtype(result = "Result<EnrolledUser, UnlockError>")]
pub struct UnlockUser {
    pub user: UserId,
    pub unlock: UnlockWith,
    pub now: i64,
}

impl Handler<UnlockUser> for StorageActor {
    type Result = Result<EnrolledUser, UnlockError>;
    fn handle(&mut self, msg: UnlockUser, _: &mut Self::Context) -> Self::Result {
        self.store()?
            .unlock_user(&msg.user, msg.unlock.as_unlock(), msg.now)
    }
}

/// Re-wraps a user's credential under another mode, in one transaction.
#[derive(Message)]
#[rtype(result = "Result<(), UnlockError>")]
pub struct ChangeProtection {
    pub user: UserId,
    pub current: UnlockWith,
    pub new: Protection,
    pub now: i64,
}

impl Handler<ChangeProtection> for StorageActor {
    type Result = Result<(), UnlockError>;
    fn handle(&mut self, msg: ChangeProtection, _: &mut Self::Context) -> Self::Result {
        self.store()?
            .change_protection(&msg.user, msg.current.as_unlock(), &msg.new, msg.now)
    }
}

/// Identified users: stores the user with its refresh token sealed under the same data key,
/// in one transaction, and makes it the last user; answers the key for its rotations.
#[derive(Message)]
#[rtype(result = "Result<SealingKey, StoreError>")]
pub struct SaveIdentifiedUser {
    pub user: EnrolledUser,
    pub protection: Protection,
    pub refresh_token: Option<SecretString>,
}

impl Handler<SaveIdentifiedUser> for StorageActor {
    type Result = Result<SealingKey, StoreError>;
    fn handle(&mut self, msg: SaveIdentifiedUser, _: &mut Self::Context) -> Self::Result {
        self.store()?
            .put_identified_user(&msg.user, &msg.protection, msg.refresh_token.as_ref())
    }
}

/// As [`UnlockUser`], also answering an identified user's refresh token and the key that
/// stores its rotation.
#[derive(Message)]
#[rtype(result = "Result<UnlockedUser, UnlockError>")]
pub struct UnlockUserWithKey {
    pub user: UserId,
    pub unlock: UnlockWith,
    pub now: i64,
}

impl Handler<UnlockUserWithKey> for StorageActor {
    type Result = Result<UnlockedUser, UnlockError>;
    fn handle(&mut self, msg: UnlockUserWithKey, _: &mut Self::Context) -> Self::Result {
        self.store()?
            .unlock_user_with_key(&msg.user, msg.unlock.as_unlock(), msg.now)
    }
}

/// Refresh-token rotation, committed before the new tokens are used.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct ReplaceRefreshToken {
    pub sealing_key: Arc<SealingKey>,
    pub refresh_token: SecretString,
}

impl Handler<ReplaceRefreshToken> for StorageActor {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, msg: ReplaceRefreshToken, _: &mut Self::Context) -> Self::Result {
        self.store()?
            .replace_refresh_token(&msg.sealing_key, &msg.refresh_token)
    }
}

/// ClearIamTokenCache CLEAR_OFFLINE/CLEAR_ALL: destroys the user's stored credential.
#[derive(Message)]
#[rtype(result = "Result<bool, StoreError>")]
pub struct ClearCredential(pub UserId);

impl Handler<ClearCredential> for StorageActor {
    type Result = Result<bool, StoreError>;
    fn handle(&mut self, msg: ClearCredential, _: &mut Self::Context) -> Self::Result {
        self.store()?.clear_credential(&msg.0)
    }
}

/// The registration's management secrets, readable without the user's unlock.
#[derive(Message)]
#[rtype(result = "Result<ManagementSecrets, StoreError>")]
pub struct LoadManagementSecrets(pub UserId);

impl Handler<LoadManagementSecrets> for StorageActor {
    type Result = Result<ManagementSecrets, StoreError>;
    fn handle(&mut self, msg: LoadManagementSecrets, _: &mut Self::Context) -> Self::Result {
        self.store()?.management_secrets(&msg.0)
    }
}

/// Removes a user; answers the users that remain.
#[derive(Message)]
#[rtype(result = "Result<Vec<UserSummary>, StoreError>")]
pub struct RemoveUser(pub UserId);

impl Handler<RemoveUser> for StorageActor {
    type Result = Result<Vec<UserSummary>, StoreError>;
    fn handle(&mut self, msg: RemoveUser, _: &mut Self::Context) -> Self::Result {
        let store = self.store()?;
        store.delete_user(&msg.0)?;
        store.list_users()
    }
}

/// DeleteUser: removes a user and queues what the IDP must still be told, in one commit;
/// answers the queued record (if any) and the users that remain.
#[derive(Message)]
#[rtype(result = "Result<(Option<IdpDeletionId>, Vec<UserSummary>), StoreError>")]
pub struct RemoveUserQueueing {
    pub user: UserId,
    pub deletion: Option<IdpDeletion>,
    pub now: i64,
}

impl Handler<RemoveUserQueueing> for StorageActor {
    type Result = Result<(Option<IdpDeletionId>, Vec<UserSummary>), StoreError>;
    fn handle(&mut self, msg: RemoveUserQueueing, _: &mut Self::Context) -> Self::Result {
        let store = self.store()?;
        let queued = store.delete_user_queueing(&msg.user, msg.deletion, msg.now)?;
        Ok((queued, store.list_users()?))
    }
}

/// The queued IDP deletions, opened (damaged ones are refused, reported and dropped).
#[derive(Message)]
#[rtype(result = "Result<Vec<PendingIdpDeletion>, StoreError>")]
pub struct ListIdpDeletions;

impl Handler<ListIdpDeletions> for StorageActor {
    type Result = Result<Vec<PendingIdpDeletion>, StoreError>;
    fn handle(&mut self, _: ListIdpDeletions, _: &mut Self::Context) -> Self::Result {
        self.store()?.pending_idp_deletions()
    }
}

/// How many IDP deletions are queued (opens nothing).
#[derive(Message)]
#[rtype(result = "Result<usize, StoreError>")]
pub struct CountIdpDeletions;

impl Handler<CountIdpDeletions> for StorageActor {
    type Result = Result<usize, StoreError>;
    fn handle(&mut self, _: CountIdpDeletions, _: &mut Self::Context) -> Self::Result {
        self.store()?.idp_deletion_count()
    }
}

/// The IDP confirmed a queued deletion (or refused it for good): the record goes.
#[derive(Message)]
#[rtype(result = "Result<bool, StoreError>")]
pub struct FinishIdpDeletion(pub IdpDeletionId);

impl Handler<FinishIdpDeletion> for StorageActor {
    type Result = Result<bool, StoreError>;
    fn handle(&mut self, msg: FinishIdpDeletion, _: &mut Self::Context) -> Self::Result {
        self.store()?.finish_idp_deletion(&msg.0)
    }
}

/// A queued deletion failed for a reason that may pass: backoff, or dropped at the bound.
#[derive(Message)]
#[rtype(result = "Result<Postponed, StoreError>")]
pub struct PostponeIdpDeletion {
    pub id: IdpDeletionId,
    pub now: i64,
    /// The IDP answered 5xx (counted, backoff) rather than not at all.
    pub server_answered: bool,
}

impl Handler<PostponeIdpDeletion> for StorageActor {
    type Result = Result<Postponed, StoreError>;
    fn handle(&mut self, msg: PostponeIdpDeletion, _: &mut Self::Context) -> Self::Result {
        self.store()?
            .postpone_idp_deletion(&msg.id, msg.now, msg.server_answered)
    }
}

/// Marks a successful login: the user becomes the default for the next OfflineLogin. One
/// commit (`record_login` writes the login time and the last user together).
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct RecordLogin {
    pub user: UserId,
    pub at: i64,
}

impl Handler<RecordLogin> for StorageActor {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, msg: RecordLogin, _: &mut Self::Context) -> Self::Result {
        self.store()?.record_login(&msg.user, msg.at)
    }
}

/// An anonymous user stored before schema 3 (named by its client_id) takes the `sub` of a
/// token just verified for it as its id, in one commit; answers its id now.
#[derive(Message)]
#[rtype(result = "Result<UserId, StoreError>")]
pub struct AdoptSubject {
    pub user: UserId,
    pub subject: String,
}

impl Handler<AdoptSubject> for StorageActor {
    type Result = Result<UserId, StoreError>;
    fn handle(&mut self, msg: AdoptSubject, _: &mut Self::Context) -> Self::Result {
        self.store()?.adopt_subject(&msg.user, &msg.subject)
    }
}

/// Sends `message` to the storage actor and maps both failure layers (actor gone, store
/// error) to a [`Failure`](crate::failure::Failure) the app can read.
pub async fn call<M, T>(
    storage: &Addr<StorageActor>,
    message: M,
) -> Result<T, crate::failure::Failure>
where
    M: Message<Result = Result<T, StoreError>> + Send + 'static,
    T: Send + 'static,
    StorageActor: Handler<M>,
{
    match storage.send(message).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(crate::failure::Failure::from_store(&error)),
        Err(_) => Err(crate::failure::Failure::component_stopped("storage actor")),
    }
}

/// As [`call`], for the unlock messages: maps an [`UnlockError`] with its retry information.
pub async fn unlock_call<M, T>(
    storage: &Addr<StorageActor>,
    message: M,
) -> Result<T, crate::failure::Failure>
where
    M: Message<Result = Result<T, UnlockError>> + UnlockMessage + Send + 'static,
    T: Send + 'static,
    StorageActor: Handler<M>,
{
    let pin = matches!(message.offered(), UnlockWith::Pin(_));
    match storage.send(message).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) if pin => Err(crate::failure::Failure::from_unlock(&error).for_pin()),
        Ok(Err(error)) => Err(crate::failure::Failure::from_unlock(&error)),
        Err(_) => Err(crate::failure::Failure::component_stopped("storage actor")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mc_events::StatusType;
    use mc_store::{
        EnrolledUser, Protection, SecretBytes, SecretString, StoredAuthMode, UserId, UserSecrets,
        UserStore,
    };

    use super::*;

    fn user(name: &str) -> EnrolledUser {
        EnrolledUser {
            id: UserId::new("tenant", name),
            enrollment_client_id: "AnonymousUserEnrollment".into(),
            server_url: "http://127.0.0.1:8080".into(),
            issuer: "http://127.0.0.1:8080/realms/tenant".into(),
            registration_client_uri: None,
            registration_client_id: None,
            redirect_uri: None,
            authentication_mode: StoredAuthMode::No,
            subject: None,
            created_at: 1_700_000_000,
            last_login_at: None,
            secrets: UserSecrets {
                device_key_pkcs8: SecretBytes::new(b"not-a-real-key".to_vec()),
                registration_access_token: Some(SecretString::new("rat".to_string())),
            },
        }
    }

    /// The in-memory backend, counting commits: each is an fsync on the file backend.
    #[derive(Default)]
    struct CountingBackend {
        inner: mc_store::MemoryBackend,
        commits: std::sync::atomic::AtomicUsize,
    }

    impl mc_store::KvBackend for CountingBackend {
        fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get(table, key)
        }
        fn keys(&self, table: &str) -> Result<Vec<Vec<u8>>, StoreError> {
            self.inner.keys(table)
        }
        fn commit(&self, batch: Vec<mc_store::Write>) -> Result<(), StoreError> {
            self.commits
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.commit(batch)
        }
    }

    /// Bounded, so a storage call that never answers fails the test instead of hanging it.
    async fn within<T>(work: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), work)
            .await
            .expect("the storage thread answered in time")
    }

    #[test]
    fn calls_are_answered_in_order_and_close_releases_the_store_file() {
        let dir = tempfile::tempdir().unwrap();
        let system = actix::System::new();
        system.block_on(async {
            let store = Arc::new(UserStore::open_default(dir.path()).unwrap());
            let storage = start(Some(store));
            // Held by the storage thread: a second opener is refused.
            assert!(UserStore::open_default(dir.path()).is_err());

            // Sent without waiting in between: handled one at a time, in order, so the
            // save is visible to the listing sent after it, and the removal to the last.
            let alice = user("alice");
            let save = storage.send(SaveUser {
                user: alice.clone(),
                protection: Protection::No,
            });
            let listed = call(&storage, ListUsers);
            let removed = call(&storage, RemoveUser(alice.id.clone()));
            let listed_after = call(&storage, ListUsers);
            let (saved, listed, removed, listed_after) =
                within(async { futures::join!(save, listed, removed, listed_after) }).await;
            saved.unwrap().unwrap();
            let (users, last) = listed.unwrap();
            assert_eq!(users.len(), 1);
            assert_eq!(last, Some(alice.id.clone()));
            assert!(removed.unwrap().is_empty());
            assert!(listed_after.unwrap().0.is_empty());

            within(storage.send(Close)).await.unwrap();
            // Released as soon as Close is answered: the next runtime opens the same files.
            let reopened = UserStore::open_default(dir.path()).expect("the file was released");
            drop(reopened);
            // A call after Close is answered with what to do, never left waiting.
            let failure = within(call(&storage, ListUsers)).await.unwrap_err();
            assert_eq!(failure.status, StatusType::InternalError);
            assert_eq!(failure.code, mc_events::error_code::COMPONENT_FAILED);
            assert!(
                failure.description.contains("start a new one"),
                "{failure:?}"
            );
        });
    }

    #[test]
    fn record_login_is_one_commit_and_refuses_an_unknown_user() {
        let system = actix::System::new();
        system.block_on(async {
            let backend = Arc::new(CountingBackend::default());
            let store = Arc::new(
                UserStore::open(
                    backend.clone(),
                    Arc::new(mc_store::StaticKeyProvider::random().unwrap()),
                )
                .unwrap(),
            );
            let storage = start(Some(store.clone()));
            let (alice, bob) = (user("alice"), user("bob"));
            for enrolled in [&alice, &bob] {
                within(storage.send(SaveUser {
                    user: enrolled.clone(),
                    protection: Protection::No,
                }))
                .await
                .unwrap()
                .unwrap();
            }
            assert_eq!(store.last_user().unwrap(), Some(bob.id.clone()));

            let commits = || backend.commits.load(std::sync::atomic::Ordering::SeqCst);
            let before = commits();
            within(call(
                &storage,
                RecordLogin {
                    user: alice.id.clone(),
                    at: 1_800_000_000,
                },
            ))
            .await
            .unwrap();
            // The login time and the last user in one durable commit (it was two).
            assert_eq!(commits() - before, 1);
            assert_eq!(store.last_user().unwrap(), Some(alice.id.clone()));
            let listed = store.list_users().unwrap();
            let logged_in = listed.iter().find(|u| u.id == alice.id).unwrap();
            assert_eq!(logged_in.last_login_at, Some(1_800_000_000));

            // An unknown user: refused, and the last user stays who it was.
            let failure = within(call(
                &storage,
                RecordLogin {
                    user: UserId::new("tenant", "mallory"),
                    at: 1_800_000_001,
                },
            ))
            .await
            .unwrap_err();
            assert_ne!(failure.status, StatusType::Ok);
            assert_eq!(commits() - before, 1, "nothing written for an unknown user");
            assert_eq!(store.last_user().unwrap(), Some(alice.id.clone()));
            within(storage.send(Close)).await.unwrap();
        });
    }
}
