//! The storage actor: the only place that reads or writes the user store. It runs on its own
//! thread (an actix `SyncArbiter`) because the store does blocking file I/O and fsync.

use std::sync::Arc;

use actix::prelude::*;
use mc_store::{EnrolledUser, StoreError, UserId, UserStore, UserSummary};

pub struct StorageActor {
    /// `None` once closed: the file is released for the next runtime on the same directory.
    store: Option<Arc<UserStore>>,
}

impl StorageActor {
    pub fn new(store: Option<Arc<UserStore>>) -> Self {
        Self { store }
    }

    fn store(&self) -> Result<&UserStore, StoreError> {
        self.store
            .as_deref()
            .ok_or_else(|| StoreError::Backend("the store is closed; start a new runtime".into()))
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

#[derive(Message)]
#[rtype(result = "Result<Option<EnrolledUser>, StoreError>")]
pub struct LoadUser(pub UserId);

impl Handler<LoadUser> for StorageActor {
    type Result = Result<Option<EnrolledUser>, StoreError>;
    fn handle(&mut self, msg: LoadUser, _: &mut Self::Context) -> Self::Result {
        self.store()?.get_user(&msg.0)
    }
}

/// Inserts or replaces a user in one transaction, and makes it the last user.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct SaveUser(pub EnrolledUser);

impl Handler<SaveUser> for StorageActor {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, msg: SaveUser, _: &mut Self::Context) -> Self::Result {
        self.store()?.put_user(&msg.0)
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
        Err(_) => Err(crate::failure::Failure::internal(
            "the storage actor stopped; restart the runtime",
        )),
    }
}
