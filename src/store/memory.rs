//! A thread-safe in-memory store, for tests, demos and single-process services.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use thiserror::Error;

use super::{CasOutcome, Store, StoredRecord};
use crate::UserId;

/// The in-memory store's only error: its lock was poisoned by a panicking thread.
#[derive(Debug, Error)]
#[error("the in-memory store's lock was poisoned")]
pub struct PoisonedStore;

/// Records in a `Mutex<HashMap>`; compare-and-swap happens under the lock. Data is lost when
/// the process ends.
///
/// ```
/// use totp_mfa::{CasOutcome, MemoryStore, Store, StoredRecord, UserId};
/// let store = MemoryStore::new();
/// let bob = UserId::new("bob").unwrap();
/// assert_eq!(store.compare_and_swap(&bob, None, StoredRecord::new(1, vec![1])).unwrap(), CasOutcome::Saved);
/// assert_eq!(store.compare_and_swap(&bob, None, StoredRecord::new(1, vec![2])).unwrap(), CasOutcome::Conflict);
/// assert_eq!(store.load(&bob).unwrap().unwrap().data(), &[1]);
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<UserId, StoredRecord>>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// How many users have a record.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// True when no user has a record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Store for MemoryStore {
    type Error = PoisonedStore;

    fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Self::Error> {
        let map = self
            .records
            .lock()
            .map_err(|_: PoisonError<_>| PoisonedStore)?;
        Ok(map.get(user).cloned())
    }

    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, Self::Error> {
        let mut map = self
            .records
            .lock()
            .map_err(|_: PoisonError<_>| PoisonedStore)?;
        if map.get(user).map(StoredRecord::version) != expected {
            return Ok(CasOutcome::Conflict);
        }
        map.insert(user.clone(), new);
        Ok(CasOutcome::Saved)
    }
}
