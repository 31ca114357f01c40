//! The SQLite store: the conformance kit passes in memory and on a file; the schema is
//! created, kept and version-checked; two stores on one file (two processes) share state.

#![cfg(all(feature = "sqlite", feature = "conformance"))]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use totp_mfa::testing::Authenticator;
use totp_mfa::{
    CasOutcome, Error, LoginStart, ManualClock, Mfa, MfaStatus, Policy, SecondFactor, SqliteError,
    SqliteStore, Store, StoredRecord, UserId, conformance,
};

/// A fresh directory under the system temp dir, removed (with the database) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "totp-mfa-sqlite-{name}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("mfa.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap()
}

fn print_report(label: &str, report: &conformance::Report) {
    for (check, took) in &report.checks {
        eprintln!("[{label}] {check}: {took:?}");
    }
    eprintln!("[{label}] total: {:?}", report.total());
}

/// A raw connection to inspect or tamper with the file behind the store's back.
fn raw(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

#[test]
fn an_in_memory_database_conforms() {
    let report = conformance::run(|| SqliteStore::open_in_memory().unwrap())
        .unwrap_or_else(|f| panic!("{f}"));
    print_report("sqlite in-memory", &report);
    assert_eq!(report.checks.len(), 10);
}

#[test]
fn a_file_database_conforms() {
    let dir = TempDir::new("kit");
    let path = dir.db();
    // Every check opens its own store on the same file, as separate processes would.
    let report =
        conformance::run(|| SqliteStore::open(&path).unwrap()).unwrap_or_else(|f| panic!("{f}"));
    print_report("sqlite file", &report);
    assert_eq!(report.checks.len(), 10);
}

/// Several connections to one file, each call going to the next: every race in the kit then
/// runs across connections, as it would across processes.
struct Connections {
    stores: Vec<SqliteStore>,
    next: AtomicUsize,
}

impl Connections {
    fn open(path: &Path, n: usize) -> Self {
        Connections {
            stores: (0..n).map(|_| SqliteStore::open(path).unwrap()).collect(),
            next: AtomicUsize::new(0),
        }
    }

    fn pick(&self) -> &SqliteStore {
        &self.stores[self.next.fetch_add(1, Ordering::Relaxed) % self.stores.len()]
    }
}

impl Store for Connections {
    type Error = SqliteError;

    fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, SqliteError> {
        self.pick().load(user)
    }

    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, SqliteError> {
        self.pick().compare_and_swap(user, expected, new)
    }
}

#[test]
fn a_file_database_shared_by_four_connections_conforms() {
    let dir = TempDir::new("kit-shared");
    let path = dir.db();
    let report = conformance::run(|| Connections::open(&path, 4)).unwrap_or_else(|f| panic!("{f}"));
    print_report("sqlite file, 4 connections", &report);
    assert_eq!(report.checks.len(), 10);
}

#[test]
fn the_schema_is_created_on_first_open_and_records_survive_reopening() {
    let dir = TempDir::new("reopen");
    let path = dir.db();
    let alice = user("alice");
    let big = u64::MAX - 1;
    {
        let store = SqliteStore::open(&path).unwrap();
        assert!(format!("{store:?}").contains("mfa.db"));
        assert_eq!(store.load(&alice).unwrap(), None);
        let _ = store
            .compare_and_swap(&alice, None, StoredRecord::new(1, vec![0, 1, 2, 255]))
            .unwrap();
        let saved = store
            .compare_and_swap(&alice, Some(1), StoredRecord::new(big, vec![9, 0, 9]))
            .unwrap();
        assert_eq!(saved, CasOutcome::Saved);
    }

    let conn = raw(&path);
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables.retain(|t| t.starts_with("totp_mfa_"));
    assert_eq!(tables, ["totp_mfa_records", "totp_mfa_schema"]);
    let version: i64 = conn
        .query_row("SELECT version FROM totp_mfa_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, i64::from(SqliteStore::SCHEMA_VERSION));
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // The u64 version is stored as its bit pattern: u64::MAX - 1 is -2 in SQL.
    let stored: i64 = conn
        .query_row(
            "SELECT version FROM totp_mfa_records WHERE user_id = 'alice'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, -2);
    drop(conn);

    let store = SqliteStore::open(&path).unwrap();
    let r = store.load(&alice).unwrap().expect("the record survived");
    assert_eq!((r.version(), r.data()), (big, &[9u8, 0, 9][..]));
    assert_eq!(
        store
            .compare_and_swap(&alice, Some(big), StoredRecord::new(u64::MAX, vec![]))
            .unwrap(),
        CasOutcome::Saved
    );
    assert_eq!(store.load(&alice).unwrap().unwrap().version(), u64::MAX);
}

#[test]
fn stores_opening_a_new_file_at_once_create_the_schema_once() {
    let dir = TempDir::new("race");
    let path = Arc::new(dir.db());
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || SqliteStore::open(&*path).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    let rows: i64 = raw(&path)
        .query_row("SELECT count(*) FROM totp_mfa_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
}

#[test]
fn a_database_with_a_newer_schema_is_refused_and_left_alone() {
    let dir = TempDir::new("newer");
    let path = dir.db();
    let alice = user("alice");
    {
        let store = SqliteStore::open(&path).unwrap();
        let _ = store
            .compare_and_swap(&alice, None, StoredRecord::new(1, vec![42]))
            .unwrap();
    }
    let conn = raw(&path);
    conn.execute("UPDATE totp_mfa_schema SET version = 2", [])
        .unwrap();
    drop(conn);

    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            SqliteError::NewerSchema {
                found: 2,
                supported: 1
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("schema version 2"), "{err}");

    // Nothing was touched.
    let conn = raw(&path);
    let (version, data): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT (SELECT version FROM totp_mfa_schema), data FROM totp_mfa_records",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((version, data), (2, vec![42]));
}

#[test]
fn a_newer_schema_without_our_tables_is_refused_too() {
    let dir = TempDir::new("newer-bare");
    let path = dir.db();
    raw(&path)
        .execute_batch(
            "CREATE TABLE totp_mfa_schema (id INTEGER PRIMARY KEY, version INTEGER NOT NULL);
             INSERT INTO totp_mfa_schema VALUES (1, 99);",
        )
        .unwrap();
    assert!(matches!(
        SqliteStore::open(&path),
        Err(SqliteError::NewerSchema { found: 99, .. })
    ));
}

type SqlMfa = Mfa<SqliteStore, Arc<ManualClock>>;

const T0: u64 = 1_800_000_000;

/// One "process": its own store on the shared file, sharing the wall clock.
fn process(path: &Path, clock: &Arc<ManualClock>) -> SqlMfa {
    let policy = Policy::new("Example").with_recovery_hash_rounds(1_000);
    Mfa::new(SqliteStore::open(path).unwrap(), policy)
        .unwrap()
        .with_clock(clock.clone())
}

fn ticket(mfa: &SqlMfa, user: &UserId) -> String {
    match mfa.start_login(user).unwrap() {
        LoginStart::Challenge(c) => c.ticket().to_owned(),
        LoginStart::NoMfa => panic!("expected a challenge"),
    }
}

#[test]
fn enroll_login_and_recovery_work_across_two_stores_on_one_file() {
    let dir = TempDir::new("flow");
    let path = dir.db();
    let clock = Arc::new(ManualClock::new(T0));
    let (a, b) = (process(&path, &clock), process(&path, &clock));
    let alice = user("alice");

    // Enrollment begun on A is confirmed on B.
    let enrollment = a.begin_enrollment(&alice, "alice@example.com").unwrap();
    assert!(matches!(
        b.status(&alice).unwrap(),
        MfaStatus::Pending { .. }
    ));
    let phone = Authenticator::from_uri(enrollment.uri().as_str()).unwrap();
    let codes = b
        .confirm_enrollment(&alice, &phone.code_at(T0).unwrap())
        .unwrap();
    assert!(matches!(
        a.status(&alice).unwrap(),
        MfaStatus::Active {
            recovery_codes_left: 10,
            ..
        }
    ));

    // A ticket from A is redeemed on B; the same code is then refused on A.
    clock.advance(30);
    let code = phone.code_at(T0 + 30).unwrap();
    let t = ticket(&a, &alice);
    let auth = b
        .complete_login(&alice, &t, SecondFactor::Totp(&code))
        .unwrap();
    assert_eq!(auth.user(), &alice);
    let err = a
        .complete_login(&alice, &ticket(&a, &alice), SecondFactor::Totp(&code))
        .unwrap_err();
    assert!(matches!(err, Error::CodeAlreadyUsed { .. }), "{err:?}");
    // The spent ticket is spent on both.
    clock.advance(30);
    let next = phone.code_at(T0 + 60).unwrap();
    assert!(matches!(
        a.complete_login(&alice, &t, SecondFactor::Totp(&next)),
        Err(Error::ChallengeInvalid)
    ));

    // A recovery code spent on A is gone on B.
    let recovery = codes.iter().next().unwrap().as_str().to_owned();
    let auth = a
        .complete_login(
            &alice,
            &ticket(&b, &alice),
            SecondFactor::RecoveryCode(&recovery),
        )
        .unwrap();
    assert_eq!(auth.recovery_codes_left(), 9);
    let err = b
        .complete_login(
            &alice,
            &ticket(&b, &alice),
            SecondFactor::RecoveryCode(&recovery),
        )
        .unwrap_err();
    assert!(matches!(err, Error::WrongRecoveryCode { .. }), "{err:?}");
    // The failure B counted is visible to A.
    assert!(matches!(
        a.status(&alice).unwrap(),
        MfaStatus::Active {
            recovery_codes_left: 9,
            failures: 1,
            ..
        }
    ));

    // And it all survives both "processes" restarting.
    drop((a, b));
    let c = process(&path, &clock);
    clock.advance(30);
    let code = phone.code_at(T0 + 90).unwrap();
    let auth = c
        .complete_login(&alice, &ticket(&c, &alice), SecondFactor::Totp(&code))
        .unwrap();
    assert_eq!(auth.recovery_codes_left(), 9);
}

/// A table made by hand with a case-insensitive key, a numeric key type, or no key is refused
/// at open, before `Alice` and `alice` (or `42` and `042`) can share a record; the file is
/// left as it was.
#[test]
fn a_hand_made_table_whose_ids_fold_or_repeat_is_refused() {
    let tables = [
        (
            "user_id TEXT NOT NULL PRIMARY KEY COLLATE NOCASE, version INTEGER NOT NULL, data BLOB NOT NULL",
            "collation other than BINARY",
        ),
        (
            "user_id TEXT NOT NULL, version INTEGER NOT NULL, data BLOB NOT NULL",
            "not the table's primary key",
        ),
        // Numeric affinity (not a rowid alias, so a real unique index exists): "42", "042",
        // "+42" and "4.2e1" would all be stored as the number 42 and share one record.
        (
            "user_id BIGINT NOT NULL PRIMARY KEY, version INTEGER NOT NULL, data BLOB NOT NULL",
            "numeric type",
        ),
        (
            "user_id INT NOT NULL PRIMARY KEY, version INTEGER NOT NULL, data BLOB NOT NULL",
            "numeric type",
        ),
        (
            "user_id NUMERIC NOT NULL PRIMARY KEY, version INTEGER NOT NULL, data BLOB NOT NULL",
            "numeric type",
        ),
        (
            "user_id REAL NOT NULL PRIMARY KEY, version INTEGER NOT NULL, data BLOB NOT NULL",
            "numeric type",
        ),
        (
            "user_id STRING NOT NULL PRIMARY KEY, version INTEGER NOT NULL, data BLOB NOT NULL",
            "numeric type",
        ),
        (
            "user_id TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL",
            "missing",
        ),
    ];
    for (columns, says) in tables {
        let dir = TempDir::new("shape");
        let path = dir.db();
        raw(&path)
            .execute_batch(&format!(
                "CREATE TABLE totp_mfa_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
                 INSERT INTO totp_mfa_schema VALUES (1, 1);
                 CREATE TABLE totp_mfa_records ({columns});"
            ))
            .unwrap();
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(
            matches!(err, SqliteError::UnexpectedSchema(_)) && err.to_string().contains(says),
            "{columns}: {err}"
        );
    }
    // Types that keep text as it is are accepted: TEXT affinity and none (BLOB, no type).
    for declared in ["VARCHAR(255)", "CLOB", "BLOB", ""] {
        let dir = TempDir::new("shape-text");
        let path = dir.db();
        raw(&path)
            .execute_batch(&format!(
                "CREATE TABLE totp_mfa_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
                 INSERT INTO totp_mfa_schema VALUES (1, 1);
                 CREATE TABLE totp_mfa_records (user_id {declared} NOT NULL PRIMARY KEY, version INTEGER NOT NULL, data BLOB NOT NULL);"
            ))
            .unwrap();
        let store = SqliteStore::open(&path).unwrap_or_else(|e| panic!("{declared:?}: {e}"));
        let (a, b) = (user("42"), user("042"));
        let saved = store
            .compare_and_swap(&a, None, StoredRecord::new(1, vec![1]))
            .unwrap();
        assert_eq!(saved, CasOutcome::Saved);
        assert!(
            store.load(&b).unwrap().is_none(),
            "{declared:?}: 42 and 042 share a record"
        );
    }
    // The schema the store makes itself passes the same check, in memory and on a file.
    let dir = TempDir::new("shape-ok");
    drop(SqliteStore::open(dir.db()).unwrap());
    drop(SqliteStore::open(dir.db()).unwrap());
    drop(SqliteStore::open_in_memory().unwrap());
}

/// Opening an up-to-date database only reads it: it succeeds while another connection holds
/// the write lock, and the store's reads work meanwhile (WAL).
#[test]
fn an_up_to_date_database_opens_while_another_connection_writes() {
    let dir = TempDir::new("busy-open");
    let path = dir.db();
    let alice = user("alice");
    let _ = SqliteStore::open(&path)
        .unwrap()
        .compare_and_swap(&alice, None, StoredRecord::new(1, vec![7]))
        .unwrap();
    let writer = raw(&path);
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.load(&alice).unwrap().unwrap().data(), [7]);
    eprintln!(
        "opened and read under a held write lock in {:?}",
        started.elapsed()
    );
    writer.execute_batch("ROLLBACK").unwrap();
}

/// SEC-08: a new database file holds secrets, so it and its WAL companions are created
/// readable by the owner only; an existing file keeps the mode it has.
#[cfg(unix)]
#[test]
fn a_new_database_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = TempDir::new("mode");
    let path = dir.db();
    let store = SqliteStore::open(&path).unwrap();
    let _ = store
        .compare_and_swap(&user("alice"), None, StoredRecord::new(1, vec![1]))
        .unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    drop(store);

    let shared = dir.0.join("shared.db");
    std::fs::write(&shared, b"").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
    drop(SqliteStore::open(&shared).unwrap());
    assert_eq!(mode(&shared), 0o640);
}
