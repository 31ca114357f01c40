//! The store conformance kit passes on the in-memory store and fails on a store without
//! compare-and-swap: the kit can fail (SEC-43).

#![cfg(feature = "conformance")]

use std::sync::Mutex;

use totp_mfa::{CasOutcome, MemoryStore, PoisonedStore, Store, StoredRecord, UserId, conformance};

#[test]
fn the_memory_store_conforms() {
    let report = conformance::run(MemoryStore::new).unwrap_or_else(|f| panic!("{f}"));
    for (check, took) in &report.checks {
        eprintln!("[memory] {check}: {took:?}");
    }
    eprintln!("[memory] total: {:?}", report.total());
    assert_eq!(report.checks.len(), 10);
}

/// Writes whatever the version: a read-modify-write store with no atomic check.
#[derive(Default)]
struct BlindWrites(MemoryStore);

impl Store for BlindWrites {
    type Error = PoisonedStore;

    fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, PoisonedStore> {
        self.0.load(user)
    }

    fn compare_and_swap(
        &self,
        user: &UserId,
        _expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, PoisonedStore> {
        let current = self.0.load(user)?.map(|r| r.version());
        self.0.compare_and_swap(user, current, new)
    }
}

#[test]
fn a_store_that_writes_blindly_fails_the_kit() {
    let failure = conformance::run(BlindWrites::default).unwrap_err();
    assert_eq!(failure.check, "versions and conflicts", "{failure}");
}

/// Keys its records by a folded id, as a table whose `user_id` column has a case-insensitive
/// collation (MySQL's default, SQLite's `NOCASE`, `citext`) would; `fold` is the collation.
struct FoldingIds {
    inner: MemoryStore,
    fold: fn(&str) -> String,
}

impl FoldingIds {
    fn key(&self, user: &UserId) -> UserId {
        UserId::new((self.fold)(user.as_str())).unwrap()
    }
}

impl Store for FoldingIds {
    type Error = PoisonedStore;

    fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, PoisonedStore> {
        self.inner.load(&self.key(user))
    }

    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, PoisonedStore> {
        self.inner.compare_and_swap(&self.key(user), expected, new)
    }
}

#[test]
fn a_store_that_folds_ids_fails_the_kit() {
    type Fold = fn(&str) -> String;
    let folds: [(&str, Fold); 4] = [
        ("ASCII case", |s| s.to_ascii_lowercase()),
        ("trailing spaces (PAD SPACE)", |s| s.trim_end().to_owned()),
        // NFD é to NFC é: the one normalization the kit's ids need.
        ("Unicode normalization", |s| s.replace("e\u{301}", "\u{e9}")),
        // A numeric key column (SQLite INTEGER/REAL/NUMERIC affinity, MySQL comparisons of
        // text with numbers): "42", "042", "+42" and "4.2e1" are one number.
        ("numeric key", |s| match s.trim().parse::<f64>() {
            Ok(n) => format!("{n}"),
            Err(_) => s.to_owned(),
        }),
    ];
    for (what, fold) in folds {
        let failure = conformance::run(|| FoldingIds {
            inner: MemoryStore::new(),
            fold,
        })
        .unwrap_err();
        assert_eq!(
            failure.check, "user ids compared byte for byte",
            "{what}: {failure}"
        );
        eprintln!("{what}: {failure}");
    }
}

/// Checks the version, but non-atomically: a check-then-write with a gap, as a store that
/// reads and writes in two round trips without a transaction would.
#[derive(Default)]
struct CheckThenWrite {
    inner: MemoryStore,
    gap: Mutex<()>,
}

impl Store for CheckThenWrite {
    type Error = PoisonedStore;

    fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, PoisonedStore> {
        self.inner.load(user)
    }

    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, PoisonedStore> {
        let current = self.inner.load(user)?.map(|r| r.version());
        if current != expected {
            return Ok(CasOutcome::Conflict);
        }
        drop(self.gap.lock());
        std::thread::sleep(std::time::Duration::from_millis(2));
        let now = self.inner.load(user)?.map(|r| r.version());
        self.inner.compare_and_swap(user, now, new)
    }
}

#[test]
fn a_store_that_checks_then_writes_fails_the_races() {
    // Which race catches it first depends on scheduling; one of them always does.
    let failure = conformance::run(CheckThenWrite::default).unwrap_err();
    let races = [
        "concurrent compare-and-swap: one winner",
        "32 requests with one TOTP code: one success",
        "32 requests with one recovery code: one success",
        "200 concurrent wrong guesses: all counted, then locked",
    ];
    assert!(races.contains(&failure.check), "{failure}");
}

/// The kit on async stores: every call is driven on a runtime from the kit's own threads.
#[cfg(feature = "async")]
#[test]
fn the_memory_store_conforms_through_its_async_face() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = conformance::run_async(runtime.handle(), MemoryStore::new)
        .unwrap_or_else(|f| panic!("{f}"));
    for (check, took) in &report.checks {
        eprintln!("[async] {check}: {took:?}");
    }
    eprintln!("[async] total: {:?}", report.total());
    assert_eq!(report.checks.len(), 10);
}

/// A blocking store made async (`BlockingStore`, on the blocking pool) conforms too.
#[cfg(feature = "async")]
#[test]
fn a_blocking_store_made_async_conforms() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = conformance::run_async(runtime.handle(), || {
        totp_mfa::BlockingStore::new(MemoryStore::new())
    })
    .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.checks.len(), 10);
}

/// The async kit still has teeth: an async store that writes blindly fails it.
#[cfg(feature = "async")]
#[test]
fn an_async_store_that_writes_blindly_fails_the_kit() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let failure = conformance::run_async(runtime.handle(), || {
        totp_mfa::BlockingStore::new(BlindWrites::default())
    })
    .unwrap_err();
    assert_eq!(failure.check, "versions and conflicts", "{failure}");
}
