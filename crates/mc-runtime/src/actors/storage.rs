//! The storage actor: the only place that reads or writes the user store. It runs on its own
//! thread (an actix `SyncArbiter`) because the store does blocking file I/O and fsync.

use std::sync::Arc;

use actix::prelude::*;
use mc_secret::SecretString;
use mc_store::{
    EnrolledUser, ManagementSecrets, Protection, StoreError, Unlock, UnlockError, UserId,
    UserStore, UserSummary,
};

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
    type Context = SyncContext<Self>;
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
    Biometric { prompt: String },
}

impl UnlockWith {
    fn as_unlock(&self) -> Unlock<'_> {
        match self {
            UnlockWith::No => Unlock::No,
            UnlockWith::Password(password) => Unlock::Password(password),
            UnlockWith::Biometric { prompt } => Unlock::Biometric { prompt },
        }
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

/// Marks a successful login: the user becomes the default for the next OfflineLogin.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct RecordLogin {
    pub user: UserId,
    pub at: i64,
}

impl Handler<RecordLogin> for StorageActor {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, msg: RecordLogin, _: &mut Self::Context) -> Self::Result {
        let store = self.store()?;
        store.record_login(&msg.user, msg.at)?;
        store.set_last_user(&msg.user)
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
    M: Message<Result = Result<T, UnlockError>> + Send + 'static,
    T: Send + 'static,
    StorageActor: Handler<M>,
{
    match storage.send(message).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(crate::failure::Failure::from_unlock(&error)),
        Err(_) => Err(crate::failure::Failure::component_stopped("storage actor")),
    }
}
