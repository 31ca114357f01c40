//! Storage: the [`Store`] trait a host implements, and an in-memory [`MemoryStore`].

#[cfg(feature = "async")]
mod asynchronous;
#[cfg(feature = "conformance")]
pub mod conformance;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use core::fmt;

use zeroize::Zeroizing;

#[cfg(feature = "async")]
pub use asynchronous::{AsyncStore, BlockingError, BlockingStore};
pub use memory::{MemoryStore, PoisonedStore};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresError, PostgresStore};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteError, SqliteStore};

use crate::UserId;

/// One user's stored record: an opaque byte string and its version.
///
/// ```
/// use totp_mfa::StoredRecord;
/// let r = StoredRecord::new(1, vec![1, 2, 3]);
/// assert_eq!((r.version(), r.data()), (1, &[1u8, 2, 3][..]));
/// assert_eq!(format!("{r:?}"), "StoredRecord { version: 1, len: 3 }");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct StoredRecord {
    version: u64,
    data: Zeroizing<Vec<u8>>,
}

impl StoredRecord {
    /// Wraps bytes read from storage.
    #[must_use]
    pub fn new(version: u64, data: Vec<u8>) -> Self {
        StoredRecord {
            version,
            data: Zeroizing::new(data),
        }
    }

    /// The version: 1 for a new record, incremented by every write.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The bytes to store. They contain secret material.
    #[must_use]
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

impl fmt::Debug for StoredRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredRecord")
            .field("version", &self.version)
            .field("len", &self.data.len())
            .finish()
    }
}

/// Whether a compare-and-swap wrote.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// The record was written.
    Saved,
    /// The stored version was not the expected one; nothing was written.
    Conflict,
}

/// Where MFA records live.
///
/// # The contract
/// A store keeps one opaque record per user: bytes plus a version number. It needs two
/// operations, and one guarantee:
///
/// * [`Store::load`] returns the current bytes and version, or `None`.
/// * [`Store::compare_and_swap`] writes new bytes and version **only if** the stored version
///   is still the one the caller read (`None` meaning "no record yet"), atomically, and says
///   whether it did. Store `new.version()` and `new.data()` exactly as given. In SQL:
///   `UPDATE totp_mfa_records SET version = $new_version, data = $new_data
///   WHERE user_id = $u AND version = $expected` (or, when `expected` is `None`, an
///   `INSERT ... ON CONFLICT DO NOTHING`), then check the row count: 1 is
///   [`CasOutcome::Saved`], 0 is [`CasOutcome::Conflict`]. Versions are `u64`; in a signed
///   `BIGINT` column store their bit pattern (`v as i64`, read back `as u64`). Key the
///   table by the user id compared byte for byte: a case-insensitive or normalizing
///   collation (MySQL's default, `citext`) would give two users one record.
///
/// That single check-and-write is what makes every rule hold under concurrency: two requests
/// racing with the same TOTP code or the same recovery code both read version `n`; the first
/// write wins, the second gets [`CasOutcome::Conflict`], and [`Mfa`](crate::Mfa) re-runs its
/// transition on the new record, in which the code is already spent. Concurrent wrong guesses
/// are each counted the same way. A store that writes without checking the version breaks
/// single use and throttling (SEC-13, SEC-15, SEC-23, SEC-43).
///
/// The bytes contain the TOTP secret and hashed recovery codes: keep the store in a secure
/// area (RFC 6238 section 5.1) and never log its contents.
///
/// Errors are the store's own type, so their cause chain survives into
/// [`Error::Storage`](crate::Error::Storage); every store error fails the operation closed.
/// Never report a failed read as `Ok(None)`: `None` means "this user has no MFA", so a
/// store that hides an outage that way lets users past their second factor.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use totp_mfa::{CasOutcome, Store, StoredRecord, UserId};
///
/// #[derive(Default)]
/// struct MyStore(Mutex<HashMap<UserId, StoredRecord>>);
///
/// impl Store for MyStore {
///     type Error = std::io::Error;
///     fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Self::Error> {
///         let map = self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?;
///         Ok(map.get(user).cloned())
///     }
///     fn compare_and_swap(&self, user: &UserId, expected: Option<u64>, new: StoredRecord)
///         -> Result<CasOutcome, Self::Error> {
///         let mut map = self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?;
///         if map.get(user).map(|r| r.version()) != expected {
///             return Ok(CasOutcome::Conflict);
///         }
///         map.insert(user.clone(), new);
///         Ok(CasOutcome::Saved)
///     }
/// }
/// ```
pub trait Store: Send + Sync {
    /// The store's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Reads a user's record, or `None` if there is none.
    ///
    /// # Errors
    /// Any failure to read; the operation then fails closed.
    fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Self::Error>;

    /// Atomically replaces the user's record with `new` if and only if its current version is
    /// `expected` (`None`: no record exists). Linearizable: of two concurrent calls with the
    /// same `expected`, at most one returns [`CasOutcome::Saved`].
    ///
    /// # Errors
    /// Any failure to write; the operation then fails closed. A version mismatch is not an
    /// error but [`CasOutcome::Conflict`].
    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, Self::Error>;
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    type Error = S::Error;

    fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Self::Error> {
        (**self).load(user)
    }

    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, Self::Error> {
        (**self).compare_and_swap(user, expected, new)
    }
}

impl<S: Store + ?Sized> Store for &S {
    type Error = S::Error;

    fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Self::Error> {
        (**self).load(user)
    }

    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, Self::Error> {
        (**self).compare_and_swap(user, expected, new)
    }
}
