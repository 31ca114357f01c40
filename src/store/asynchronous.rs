//! The async storage trait, for stores whose I/O is asynchronous (PostgreSQL on tokio...).

use std::future::Future;
use std::sync::Arc;

use thiserror::Error as ThisError;

use crate::UserId;
use crate::store::{CasOutcome, MemoryStore, Store, StoredRecord};

/// Where MFA records live, for [`AsyncMfa`](crate::AsyncMfa): the same contract as
/// [`Store`] (read the contract there), with asynchronous methods.
///
/// The futures must be `Send` so a service can run the flows on a multi-threaded runtime,
/// and an implementation must not block the thread it is polled on: use an async client, or
/// wrap a blocking [`Store`] in [`BlockingStore`].
///
/// Pass every failure on as an error. Never turn one into `Ok(None)`: `None` means "this
/// user has no MFA", so a store that reports an outage as `None` lets users past their
/// second factor while the database is down.
///
/// ```
/// use totp_mfa::{AsyncStore, CasOutcome, MemoryStore, PoisonedStore, StoredRecord, UserId};
///
/// // A store over some async database client; here an in-memory map stands in for it.
/// struct MyStore(MemoryStore);
///
/// impl AsyncStore for MyStore {
///     type Error = PoisonedStore; // your client's error type
///     async fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Self::Error> {
///         totp_mfa::Store::load(&self.0, user) // errors go on, never `Ok(None)`
///     }
///     async fn compare_and_swap(&self, user: &UserId, expected: Option<u64>, new: StoredRecord)
///         -> Result<CasOutcome, Self::Error> {
///         totp_mfa::Store::compare_and_swap(&self.0, user, expected, new)
///     }
/// }
/// ```
pub trait AsyncStore: Send + Sync {
    /// The store's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Reads a user's record, or `None` if there is none. See [`Store::load`].
    fn load(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<StoredRecord>, Self::Error>> + Send;

    /// Atomically replaces the user's record with `new` if and only if its current version is
    /// `expected`. See [`Store::compare_and_swap`].
    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> impl Future<Output = Result<CasOutcome, Self::Error>> + Send;
}

impl<S: AsyncStore + ?Sized> AsyncStore for Arc<S> {
    type Error = S::Error;

    fn load(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<StoredRecord>, Self::Error>> + Send {
        (**self).load(user)
    }

    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> impl Future<Output = Result<CasOutcome, Self::Error>> + Send {
        (**self).compare_and_swap(user, expected, new)
    }
}

/// The in-memory store never waits on I/O: its lock is held only to copy one record.
impl AsyncStore for MemoryStore {
    type Error = <MemoryStore as Store>::Error;

    async fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Self::Error> {
        Store::load(self, user)
    }

    async fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, Self::Error> {
        Store::compare_and_swap(self, user, expected, new)
    }
}

/// A blocking [`Store`] (such as `SqliteStore`, feature `sqlite`) made async: every call
/// runs on tokio's blocking thread pool (`spawn_blocking`), so it never stalls the runtime.
/// Needs a tokio runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), totp_mfa::Error> {
/// use totp_mfa::{AsyncMfa, BlockingStore, MemoryStore, Policy};
/// let mfa = AsyncMfa::new(BlockingStore::new(MemoryStore::new()), Policy::new("Example"))?;
/// # Ok(()) }
/// ```
pub struct BlockingStore<S> {
    inner: Arc<S>,
}

impl<S> BlockingStore<S> {
    /// Wraps `store`.
    pub fn new(store: S) -> Self {
        BlockingStore {
            inner: Arc::new(store),
        }
    }

    /// The wrapped store.
    #[must_use]
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S> Clone for BlockingStore<S> {
    fn clone(&self) -> Self {
        BlockingStore {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> core::fmt::Debug for BlockingStore<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlockingStore").finish_non_exhaustive()
    }
}

/// Why a [`BlockingStore`] call failed.
#[derive(Debug, ThisError)]
#[non_exhaustive]
pub enum BlockingError<E: std::error::Error + 'static> {
    /// The wrapped store failed.
    #[error(transparent)]
    Store(E),
    /// The blocking task was cancelled or panicked (the runtime is shutting down, say).
    #[error("the store's blocking task did not finish")]
    Task(#[source] tokio::task::JoinError),
    /// The store was called outside a tokio runtime, so there is no blocking pool to run it
    /// on. Nothing was read or written.
    #[error("the store was called outside a tokio runtime")]
    NoRuntime(#[source] tokio::runtime::TryCurrentError),
}

/// Runs `work` on the current runtime's blocking pool.
async fn on_blocking_pool<T: Send + 'static, E: std::error::Error + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, BlockingError<E>> {
    tokio::runtime::Handle::try_current()
        .map_err(BlockingError::NoRuntime)?
        .spawn_blocking(work)
        .await
        .map_err(BlockingError::Task)?
        .map_err(BlockingError::Store)
}

impl<S: Store + 'static> AsyncStore for BlockingStore<S> {
    type Error = BlockingError<S::Error>;

    async fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Self::Error> {
        let store = Arc::clone(&self.inner);
        let user = user.clone();
        on_blocking_pool(move || store.load(&user)).await
    }

    async fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, Self::Error> {
        let store = Arc::clone(&self.inner);
        let user = user.clone();
        on_blocking_pool(move || store.compare_and_swap(&user, expected, new)).await
    }
}
