//! The PostgreSQL store, against a real throwaway server that this test binary starts
//! itself (one server, a new database per test): the conformance kit (one connection,
//! several, and at SERIALIZABLE), the schema (created once, kept, migrated safely by
//! concurrent connects, refused when newer, usable without `CREATE`), the edge cases
//! (versions, bytes, ids, redacted errors, serialization failures, a lost connection), and
//! one recovery code raced by separate OS processes.
//!
//! The server comes from `initdb` and `pg_ctl`, found on `PATH` or under
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package puts them there, off `PATH`),
//! started by the harness in `tests/support/pg_server.rs` (shared with `benches/scale.rs`).
//! As root, they run as the `postgres` OS user, since `initdb` refuses root. Without them
//! the tests are skipped, loudly; with `CI` set they fail instead.

#![cfg(all(feature = "postgres", feature = "conformance"))]

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_postgres::error::SqlState;
use totp_mfa::testing::Authenticator;
use totp_mfa::{
    AsyncMfa, AsyncStore, CasOutcome, Error, LoginStart, ManualClock, MfaStatus, Policy,
    PostgresError, PostgresStore, SecondFactor, StoredRecord, Throttle, UserId, conformance,
};

// ---------------------------------------------------------------------------------------
// The throwaway server
// ---------------------------------------------------------------------------------------

#[path = "support/pg_server.rs"]
mod pg_server;

use pg_server::{PgServer, postgres_bin_dir};

/// The shared server, started by the first test that needs it, or `None` (after saying so
/// loudly) when PostgreSQL is not installed. With `CI` set, a missing PostgreSQL fails the
/// test instead.
fn shared_server(test: &str) -> Option<&'static PgServer> {
    static SERVER: OnceLock<Option<PgServer>> = OnceLock::new();
    let server = SERVER.get_or_init(|| postgres_bin_dir().map(PgServer::start));
    if server.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but PostgreSQL (initdb, pg_ctl) was found neither on PATH nor under \
             /usr/lib/postgresql/*/bin: install the `postgresql` package"
        );
        eprintln!(
            "\n!!! SKIPPING {test}: PostgreSQL not found (initdb and pg_ctl, on PATH or under \
             /usr/lib/postgresql/*/bin). Install `postgresql` to run it. !!!\n"
        );
    }
    server.as_ref()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// The shared server and a new database for test `$test`, or skips the test.
macro_rules! server_or_skip {
    ($test:expr) => {
        match shared_server($test) {
            Some(server) => (server, server.database($test)),
            None => return,
        }
    };
}

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap()
}

fn print_report(label: &str, report: &conformance::Report) {
    for (check, took) in &report.checks {
        eprintln!("[{label}] {check}: {took:?}");
    }
    eprintln!("[{label}] kit total: {:?}", report.total());
}

fn block_on<F: Future>(rt: &tokio::runtime::Runtime, f: F) -> F::Output {
    rt.block_on(f)
}

// ---------------------------------------------------------------------------------------
// (a) The conformance kit
// ---------------------------------------------------------------------------------------

/// Several stores (connections) on one database, each call going to the next: every race
/// in the kit then runs across server backends, as it would across processes.
struct Connections {
    stores: Vec<PostgresStore>,
    next: AtomicUsize,
}

impl Connections {
    fn connect(rt: &tokio::runtime::Handle, url: &str, n: usize) -> Self {
        Connections {
            stores: (0..n)
                .map(|_| rt.block_on(PostgresStore::connect(url)).unwrap())
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    fn pick(&self) -> &PostgresStore {
        &self.stores[self.next.fetch_add(1, Ordering::Relaxed) % self.stores.len()]
    }
}

impl AsyncStore for Connections {
    type Error = PostgresError;

    async fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, PostgresError> {
        self.pick().load(user).await
    }

    async fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, PostgresError> {
        self.pick().compare_and_swap(user, expected, new).await
    }
}

#[test]
fn one_connection_conforms() {
    let (server, db) = server_or_skip!("one_connection_conforms");
    let rt = runtime();
    let url = server.url(&db);
    let handle = rt.handle().clone();
    let report = conformance::run_async(rt.handle(), || {
        handle.block_on(PostgresStore::connect(&url)).unwrap()
    })
    .unwrap_or_else(|f| panic!("{f}"));
    print_report("postgres, 1 connection", &report);
    assert_eq!(report.checks.len(), 10);
}

#[test]
fn four_connections_conform() {
    let (server, db) = server_or_skip!("four_connections_conform");
    let rt = runtime();
    let url = server.url(&db);
    let report = conformance::run_async(rt.handle(), || Connections::connect(rt.handle(), &url, 4))
        .unwrap_or_else(|f| panic!("{f}"));
    print_report("postgres, 4 connections, READ COMMITTED", &report);
    assert_eq!(report.checks.len(), 10);
}

/// At SERIALIZABLE (CockroachDB's default), racing `UPDATE`s fail with SQLSTATE 40001; the
/// store answers `Conflict`, the flows re-run, and every rule still holds.
#[test]
fn four_connections_at_serializable_conform() {
    let (server, db) = server_or_skip!("four_connections_at_serializable_conform");
    let rt = runtime();
    block_on(&rt, async {
        server
            .raw(&db)
            .await
            .batch_execute(&format!(
                "ALTER DATABASE {db} SET default_transaction_isolation = 'serializable'"
            ))
            .await
            .unwrap();
        let level: String = server
            .raw(&db)
            .await
            .query_one("SHOW transaction_isolation", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(level, "serializable");
    });
    let url = server.url(&db);
    let report = conformance::run_async(rt.handle(), || Connections::connect(rt.handle(), &url, 4))
        .unwrap_or_else(|f| panic!("{f}"));
    print_report("postgres, 4 connections, SERIALIZABLE", &report);
    assert_eq!(report.checks.len(), 10);
    let failures = server
        .log_of(&db)
        .matches("could not serialize access")
        .count();
    eprintln!(
        "[postgres, 4 connections, SERIALIZABLE] serialization failures (40001) answered as \
         Conflict: {failures}"
    );
}

// ---------------------------------------------------------------------------------------
// (b) The schema
// ---------------------------------------------------------------------------------------

#[test]
fn the_schema_is_created_on_first_connect_and_records_survive_reconnecting() {
    let (server, db) = server_or_skip!("schema_created");
    let rt = runtime();
    block_on(&rt, async {
        let url = server.url(&db);
        let alice = user("alice");
        let big = u64::MAX - 1;
        {
            let store = PostgresStore::connect(&url).await.unwrap();
            assert_eq!(store.load(&alice).await.unwrap(), None);
            let saved = store
                .compare_and_swap(&alice, None, StoredRecord::new(1, vec![0, 1, 2, 255]))
                .await
                .unwrap();
            assert_eq!(saved, CasOutcome::Saved);
            let saved = store
                .compare_and_swap(&alice, Some(1), StoredRecord::new(big, vec![9, 0, 9]))
                .await
                .unwrap();
            assert_eq!(saved, CasOutcome::Saved);
        }

        let raw = server.raw(&db).await;
        let tables: Vec<String> = raw
            .query(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_name LIKE 'totp_mfa_%' ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(tables, ["totp_mfa_records", "totp_mfa_schema"]);
        let columns: Vec<(String, String, Option<String>)> = raw
            .query(
                "SELECT column_name::text, data_type::text, collation_name::text
                 FROM information_schema.columns
                 WHERE table_name = 'totp_mfa_records' ORDER BY ordinal_position",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let expected = [
            ("user_id", "text", Some("C")),
            ("version", "bigint", None),
            ("data", "bytea", None),
        ];
        for ((name, ty, coll), (en, et, ec)) in columns.iter().zip(expected) {
            assert_eq!(
                (name.as_str(), ty.as_str(), coll.as_deref()),
                (en, et, ec),
                "{columns:?}"
            );
        }
        let schema: Vec<(i32, i32)> = raw
            .query("SELECT id, version FROM totp_mfa_schema", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(schema, [(1, PostgresStore::SCHEMA_VERSION as i32)]);
        // The u64 version is stored as its bit pattern: u64::MAX - 1 is -2 in SQL.
        let stored: i64 = raw
            .query_one(
                "SELECT version FROM totp_mfa_records WHERE user_id = 'alice'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(stored, -2);

        // A second connect to the same database keeps everything.
        let store = PostgresStore::connect(&url).await.unwrap();
        let r = store
            .load(&alice)
            .await
            .unwrap()
            .expect("the record survived");
        assert_eq!((r.version(), r.data()), (big, &[9u8, 0, 9][..]));
        let saved = store
            .compare_and_swap(&alice, Some(big), StoredRecord::new(u64::MAX, vec![]))
            .await
            .unwrap();
        assert_eq!(saved, CasOutcome::Saved);
        assert_eq!(
            store.load(&alice).await.unwrap().unwrap().version(),
            u64::MAX
        );
        let rows: i64 = raw
            .query_one("SELECT count(*) FROM totp_mfa_schema", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 1);
    });
}

#[test]
fn stores_connecting_to_a_new_database_at_once_create_the_schema_once() {
    let (server, db) = server_or_skip!("concurrent_migration");
    let rt = runtime();
    block_on(&rt, async {
        let url = Arc::new(server.url(&db));
        let started = Instant::now();
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { PostgresStore::connect(&url).await })
            })
            .collect();
        let mut stores = Vec::new();
        for t in tasks {
            stores.push(
                t.await
                    .unwrap()
                    .expect("every concurrent connect migrates safely"),
            );
        }
        eprintln!(
            "[concurrent migration] 12 stores connected at once to a new database in {:?}",
            started.elapsed()
        );
        let raw = server.raw(&db).await;
        let rows: i64 = raw
            .query_one("SELECT count(*) FROM totp_mfa_schema", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 1);
        // They all work on the one table.
        let bob = user("bob");
        let mut saved = 0;
        for s in &stores {
            if s.compare_and_swap(&bob, None, StoredRecord::new(1, vec![1]))
                .await
                .unwrap()
                == CasOutcome::Saved
            {
                saved += 1;
            }
        }
        assert_eq!(saved, 1);
    });
}

#[test]
fn a_database_with_a_newer_schema_is_refused_and_left_alone() {
    let (server, db) = server_or_skip!("newer_schema");
    let rt = runtime();
    block_on(&rt, async {
        let url = server.url(&db);
        let alice = user("alice");
        {
            let store = PostgresStore::connect(&url).await.unwrap();
            let _ = store
                .compare_and_swap(&alice, None, StoredRecord::new(1, vec![42]))
                .await
                .unwrap();
        }
        let raw = server.raw(&db).await;
        raw.batch_execute("UPDATE totp_mfa_schema SET version = 2")
            .await
            .unwrap();

        let err = PostgresStore::connect(&url).await.unwrap_err();
        assert!(
            matches!(
                err,
                PostgresError::NewerSchema {
                    found: 2,
                    supported: 1
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("schema version 2"), "{err}");

        let row = raw
            .query_one(
                "SELECT (SELECT version FROM totp_mfa_schema), data FROM totp_mfa_records",
                &[],
            )
            .await
            .unwrap();
        let (version, data): (i32, Vec<u8>) = (row.get(0), row.get(1));
        assert_eq!((version, data), (2, vec![42]));
    });
}

/// A records table made by hand whose ids fold (a nondeterministic ICU collation), that has
/// no key, or whose version column is too narrow is refused at connect, before `Alice` and
/// `alice` can share a record; the table is left as it was.
#[test]
fn a_hand_made_table_whose_ids_fold_or_repeat_is_refused() {
    let (server, db) = server_or_skip!("shape");
    let rt = runtime();
    block_on(&rt, async {
        let tables = [
            (
                "user_id TEXT COLLATE folding PRIMARY KEY, version BIGINT NOT NULL, data BYTEA NOT NULL",
                "deterministic collation",
            ),
            (
                "user_id TEXT NOT NULL, version BIGINT NOT NULL, data BYTEA NOT NULL",
                "not the table's key",
            ),
            (
                "user_id TEXT PRIMARY KEY, version INTEGER NOT NULL, data BYTEA NOT NULL",
                "version is not bigint",
            ),
        ];
        for (i, (columns, says)) in tables.iter().enumerate() {
            let name = format!("{db}_shape{i}");
            server.create_database(&name).await;
            let raw = server.raw(&name).await;
            raw.batch_execute(&format!(
                "CREATE COLLATION folding (provider = icu, locale = 'und-u-ks-level2',
                                           deterministic = false);
                 CREATE TABLE totp_mfa_schema (id INTEGER PRIMARY KEY, version INTEGER NOT NULL);
                 INSERT INTO totp_mfa_schema VALUES (1, 1);
                 CREATE TABLE totp_mfa_records ({columns});"
            ))
            .await
            .unwrap();
            let err = PostgresStore::connect(&server.url(&name))
                .await
                .unwrap_err();
            assert!(
                matches!(err, PostgresError::UnexpectedSchema(_)) && err.to_string().contains(says),
                "{columns}: {err}"
            );
        }
        // The schema the store makes itself passes the same check, on first and later
        // connects.
        drop(PostgresStore::connect(&server.url(&db)).await.unwrap());
        drop(PostgresStore::connect(&server.url(&db)).await.unwrap());
    });
}

/// The documented guard against a row lock held elsewhere: with `lock_timeout` in the
/// connection string, a login on a locked row fails closed with a typed error in bounded
/// time, grants nothing, and works once the lock is gone.
#[test]
fn a_lock_timeout_in_the_connection_string_bounds_a_blocked_call() {
    let (server, db) = server_or_skip!("lock_timeout");
    let rt = runtime();
    block_on(&rt, async {
        let url = format!("{} options='-c lock_timeout=300ms'", server.url(&db));
        let clock = Arc::new(ManualClock::new(T0));
        let mfa = AsyncMfa::new(PostgresStore::connect(&url).await.unwrap(), policy())
            .unwrap()
            .with_clock(clock.clone());
        let alice = user("alice");
        let e = mfa.begin_enrollment(&alice, "alice").await.unwrap();
        let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
        let _codes = mfa
            .confirm_enrollment(&alice, &phone.code_at(T0).unwrap())
            .await
            .unwrap();
        clock.advance(30);
        let code = phone.code_at(T0 + 30).unwrap();
        let LoginStart::Challenge(challenge) = mfa.start_login(&alice).await.unwrap() else {
            panic!("MFA is on");
        };

        let mut locker = server.raw(&db).await;
        let tx = locker.transaction().await.unwrap();
        tx.execute(
            "SELECT 1 FROM totp_mfa_records WHERE user_id = 'alice' FOR UPDATE",
            &[],
        )
        .await
        .unwrap();
        let started = Instant::now();
        let err = mfa
            .complete_login(&alice, challenge.ticket(), SecondFactor::Totp(&code))
            .await
            .unwrap_err();
        eprintln!("blocked login failed after {:?}: {err}", started.elapsed());
        assert!(matches!(err, Error::Storage(_)), "{err:?}");
        assert!(err.is_infrastructure(), "{err}");
        tx.rollback().await.unwrap();

        let auth = mfa
            .complete_login(&alice, challenge.ticket(), SecondFactor::Totp(&code))
            .await
            .unwrap();
        assert_eq!(auth.user(), &alice);
    });
}

/// A service role with only `SELECT, INSERT, UPDATE` works on an up-to-date database (no
/// DDL is attempted), and is refused with a typed error on a new one.
#[test]
fn an_up_to_date_database_needs_no_create_privilege() {
    let (server, db) = server_or_skip!("privileges");
    let rt = runtime();
    block_on(&rt, async {
        let empty = format!("{db}_empty");
        server.create_database(&empty).await;
        let admin = server.raw(&db).await;
        admin
            .batch_execute("CREATE ROLE svc LOGIN; REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            .await
            .unwrap();
        let svc_url =
            |db: &str| format!("host=127.0.0.1 port={} user=svc dbname={db}", server.port);

        let err = PostgresStore::connect(&svc_url(&empty)).await.unwrap_err();
        assert_eq!(
            err.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{err:?}"
        );

        drop(PostgresStore::connect(&server.url(&db)).await.unwrap()); // the admin migrates
        admin
            .batch_execute(
                "GRANT SELECT, INSERT, UPDATE ON totp_mfa_records TO svc;
                 GRANT SELECT ON totp_mfa_schema TO svc",
            )
            .await
            .unwrap();
        let store = PostgresStore::connect(&svc_url(&db)).await.unwrap();
        let carol = user("carol");
        assert_eq!(
            store
                .compare_and_swap(&carol, None, StoredRecord::new(1, vec![7]))
                .await
                .unwrap(),
            CasOutcome::Saved
        );
        assert_eq!(store.load(&carol).await.unwrap().unwrap().data(), [7]);
    });
}

#[test]
fn from_client_uses_a_connection_the_caller_drives() {
    let (server, db) = server_or_skip!("from_client");
    let rt = runtime();
    block_on(&rt, async {
        let (client, connection) = tokio_postgres::connect(&server.url(&db), tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(connection);
        let store = PostgresStore::from_client(client).await.unwrap();
        let dave = user("dave");
        let _ = store
            .compare_and_swap(&dave, None, StoredRecord::new(1, vec![1, 2]))
            .await
            .unwrap();
        assert_eq!(store.load(&dave).await.unwrap().unwrap().data(), [1, 2]);
        drop(store);
        // Dropping the store (its client) ends the caller's connection task.
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the connection ends with the store")
            .unwrap()
            .unwrap();
    });
}

// ---------------------------------------------------------------------------------------
// (c) Edge cases
// ---------------------------------------------------------------------------------------

#[test]
fn versions_bytes_and_ids_survive_exactly() {
    let (server, db) = server_or_skip!("edge_values");
    let rt = runtime();
    block_on(&rt, async {
        let store = PostgresStore::connect(&server.url(&db)).await.unwrap();
        let raw = server.raw(&db).await;

        // Versions across the i64 boundary: stored as bit patterns, compared exactly.
        let v = user("versions");
        let above = i64::MAX as u64 + 1;
        assert_eq!(
            store
                .compare_and_swap(&v, None, StoredRecord::new(i64::MAX as u64, vec![1]))
                .await
                .unwrap(),
            CasOutcome::Saved
        );
        assert_eq!(
            store
                .compare_and_swap(&v, Some(above), StoredRecord::new(above + 1, vec![2]))
                .await
                .unwrap(),
            CasOutcome::Conflict,
            "a version that differs only past i64::MAX must not match"
        );
        assert_eq!(
            store
                .compare_and_swap(&v, Some(i64::MAX as u64), StoredRecord::new(above, vec![3]))
                .await
                .unwrap(),
            CasOutcome::Saved
        );
        let r = store.load(&v).await.unwrap().unwrap();
        assert_eq!((r.version(), r.data()), (above, &[3u8][..]));
        let sql: i64 = raw
            .query_one(
                "SELECT version FROM totp_mfa_records WHERE user_id = 'versions'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(sql, i64::MIN);
        assert_eq!(
            store
                .compare_and_swap(&v, Some(above), StoredRecord::new(u64::MAX, vec![]))
                .await
                .unwrap(),
            CasOutcome::Saved
        );
        assert_eq!(store.load(&v).await.unwrap().unwrap().version(), u64::MAX);

        // Bytes: every byte value, empty, 1 MiB.
        let b = user("bytes");
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        let _ = store
            .compare_and_swap(&b, None, StoredRecord::new(1, all.clone()))
            .await
            .unwrap();
        assert_eq!(store.load(&b).await.unwrap().unwrap().data(), all);
        let big: Vec<u8> = (0..1 << 20)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let _ = store
            .compare_and_swap(&b, Some(1), StoredRecord::new(2, big.clone()))
            .await
            .unwrap();
        assert_eq!(store.load(&b).await.unwrap().unwrap().data(), big);

        // Ids compare byte for byte: case, Unicode normalization, trailing space, 255 bytes.
        let ids = [
            "Alice".to_owned(),
            "alice".to_owned(),
            "alice ".to_owned(),
            "\u{e9}".to_owned(),
            "e\u{301}".to_owned(),
            "\u{1f510}".repeat(63) + "abc",
        ];
        assert_eq!(ids[5].len(), 255);
        for (i, id) in ids.iter().enumerate() {
            let u = user(id);
            assert_eq!(
                store
                    .compare_and_swap(&u, None, StoredRecord::new(1, vec![i as u8]))
                    .await
                    .unwrap(),
                CasOutcome::Saved,
                "{id:?} collided with another id"
            );
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(
                store.load(&user(id)).await.unwrap().unwrap().data(),
                [i as u8]
            );
        }

        // PostgreSQL text cannot hold NUL, so no user id has one.
        assert!(matches!(UserId::new("nul\0id"), Err(Error::UserId)));
    });
}

/// A failing constraint makes PostgreSQL repeat the row in its report ("Failing row
/// contains ..."); the store's error keeps the SQLSTATE and the message, never the bytes.
#[test]
fn errors_never_carry_record_bytes() {
    let (server, db) = server_or_skip!("redacted_errors");
    let rt = runtime();
    block_on(&rt, async {
        let url = format!(
            "{} password=hunter2 application_name=redaction",
            server.url(&db)
        );
        let store = PostgresStore::connect(&url).await.unwrap();
        let debug = format!("{store:?}");
        assert!(
            debug.starts_with("PostgresStore") && !debug.contains("hunter2"),
            "{debug}"
        );

        let raw = server.raw(&db).await;
        raw.batch_execute(
            "ALTER TABLE totp_mfa_records ADD CONSTRAINT tiny CHECK (length(data) < 4)",
        )
        .await
        .unwrap();
        let secret = b"SECRET-TOTP-KEY".to_vec();
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let eve = user("eve");

        // The driver's own error does carry the row...
        let raw_err = raw
            .execute(
                "INSERT INTO totp_mfa_records (user_id, version, data) VALUES ('x', 1, $1)",
                &[&secret],
            )
            .await
            .unwrap_err();
        assert!(
            format!("{raw_err:?}").contains(&hex),
            "the server no longer repeats the row; this test proves nothing: {raw_err:?}"
        );
        // ...the store's does not.
        let err = store
            .compare_and_swap(&eve, None, StoredRecord::new(1, secret.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::CHECK_VIOLATION), "{err:?}");
        let shown = format!("{err} | {err:?} | {:?}", std::error::Error::source(&err));
        eprintln!("[edge] the store's error: {err}");
        assert!(
            !shown.contains(&hex) && !shown.contains("SECRET"),
            "{shown}"
        );
        assert!(store.load(&eve).await.unwrap().is_none());

        // Through the flows, the cause chain survives into Error::Storage, still redacted.
        let mfa = AsyncMfa::new(store, policy())
            .unwrap()
            .with_clock(ManualClock::new(T0));
        let flow_err = mfa
            .begin_enrollment(&eve, "eve@example.com")
            .await
            .unwrap_err();
        assert!(matches!(flow_err, Error::Storage(_)), "{flow_err:?}");
        let mut chain = format!("{flow_err:?}");
        let mut source = std::error::Error::source(&flow_err);
        while let Some(s) = source {
            chain.push_str(&format!(" / {s} / {s:?}"));
            source = s.source();
        }
        assert!(!chain.contains("Failing row"), "{chain}");
    });
}

/// At REPEATABLE READ, an `UPDATE` that waited for a concurrent writer fails with 40001
/// instead of re-checking its `WHERE`: the store answers `Conflict`, having written nothing.
#[test]
fn a_serialization_failure_is_a_conflict_and_writes_nothing() {
    let (server, db) = server_or_skip!("serialization_failure");
    let rt = runtime();
    block_on(&rt, async {
        server
            .raw("postgres")
            .await
            .batch_execute(&format!(
                "ALTER DATABASE {db} SET default_transaction_isolation = 'repeatable read'"
            ))
            .await
            .unwrap();
        let url = format!("{} application_name=rr_store", server.url(&db));
        let store = PostgresStore::connect(&url).await.unwrap();
        let frank = user("frank");
        let _ = store
            .compare_and_swap(&frank, None, StoredRecord::new(1, vec![1]))
            .await
            .unwrap();

        // First, the same race on a raw connection shows that the server answers 40001.
        let mut writer = server.raw(&db).await;
        let other = server.raw(&db).await;
        let tx = writer.transaction().await.unwrap();
        tx.execute(
            "UPDATE totp_mfa_records SET version = 2, data = '\\x02' WHERE user_id = 'frank'",
            &[],
        )
        .await
        .unwrap();
        let blocked = tokio::spawn(async move {
            other
                .execute(
                    "UPDATE totp_mfa_records SET version = 9 WHERE user_id = 'frank' AND version = 1",
                    &[],
                )
                .await
        });
        wait_for_lock_waiters(server, &db, 1).await;
        tx.commit().await.unwrap();
        let raw_err = blocked.await.unwrap().unwrap_err();
        assert_eq!(
            raw_err.code(),
            Some(&SqlState::T_R_SERIALIZATION_FAILURE),
            "{raw_err:?}"
        );

        // Now the store, in the same position: version 2 is stored, the store expects it.
        let tx = writer.transaction().await.unwrap();
        tx.execute(
            "UPDATE totp_mfa_records SET version = 3, data = '\\x03' WHERE user_id = 'frank'",
            &[],
        )
        .await
        .unwrap();
        let store = Arc::new(store);
        let s = store.clone();
        let cas = tokio::spawn(async move {
            s.compare_and_swap(&user("frank"), Some(2), StoredRecord::new(3, vec![0xee]))
                .await
        });
        wait_for_lock_waiters(server, &db, 1).await;
        tx.commit().await.unwrap();
        assert_eq!(cas.await.unwrap().unwrap(), CasOutcome::Conflict);
        let r = store.load(&frank).await.unwrap().unwrap();
        assert_eq!(
            (r.version(), r.data()),
            (3, &[3u8][..]),
            "the store wrote nothing"
        );
        assert!(server.log_of(&db).contains("could not serialize access"));
    });
}

/// Waits until `n` backends of `db` wait on a lock.
async fn wait_for_lock_waiters(server: &PgServer, db: &str, n: i64) {
    let raw = server.raw(db).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = raw
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                &[&db],
            )
            .await
            .unwrap()
            .get(0);
        if waiting >= n {
            return;
        }
        assert!(Instant::now() < deadline, "no backend waited on the lock");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn a_lost_connection_fails_closed() {
    let (server, db) = server_or_skip!("lost_connection");
    let rt = runtime();
    block_on(&rt, async {
        let url = format!("{} application_name=doomed", server.url(&db));
        let mfa = AsyncMfa::new(PostgresStore::connect(&url).await.unwrap(), policy())
            .unwrap()
            .with_clock(ManualClock::new(T0));
        let grace = user("grace");
        let _ = enroll(&mfa, &grace).await;
        assert!(!mfa.store().is_closed());

        server
            .raw("postgres")
            .await
            .batch_execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity
                 WHERE application_name = 'doomed'",
            )
            .await
            .unwrap();
        let err = mfa.start_login(&grace).await.unwrap_err();
        assert!(matches!(err, Error::Storage(_)), "{err:?}");
        eprintln!("[edge] after the connection was terminated: {err}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !mfa.store().is_closed() {
            assert!(Instant::now() < deadline, "the store never noticed");
            let _ = mfa.store().load(&grace).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let err = mfa.store().load(&grace).await.unwrap_err();
        assert!(matches!(err, PostgresError::Client(_)), "{err:?}");
    });
}

#[test]
fn connect_outside_a_tokio_runtime_is_a_typed_error() {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    // No server needed: the runtime is checked before connecting.
    let mut connect = pin!(PostgresStore::connect("host=127.0.0.1 port=1 user=nobody"));
    match connect
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(Err(PostgresError::NoRuntime(_))) => {}
        Poll::Ready(other) => panic!("{:?}", other.map(|_| ())),
        Poll::Pending => panic!("connect went on without a runtime"),
    }
}

// ---------------------------------------------------------------------------------------
// (d) One recovery code, raced by separate OS processes
// ---------------------------------------------------------------------------------------

const T0: u64 = 1_800_000_000;
const RACERS: usize = 6;
const CHILD_TEST: &str = "race_child_process";
const ENV_URL: &str = "TOTP_MFA_RACE_URL";
const ENV_USER: &str = "TOTP_MFA_RACE_USER";
const ENV_CODE: &str = "TOTP_MFA_RACE_CODE";
const ENV_TICKET: &str = "TOTP_MFA_RACE_TICKET";
const ENV_DIR: &str = "TOTP_MFA_RACE_DIR";
const ENV_INDEX: &str = "TOTP_MFA_RACE_INDEX";
const RESULT_PREFIX: &str = "TOTP-MFA-RACE-RESULT";

/// The policy every process uses: the fewest recovery-hash rounds (checking the code still
/// takes each request far longer than the spread of their starts, so they overlap), no
/// throttle delays (so every loser is refused for the code, not told to wait).
fn policy() -> Policy {
    Policy::new("Example")
        .with_recovery_hash_rounds(1_000)
        .with_throttle(Throttle {
            free_failures: 100,
            lock_after: 100,
            ..Throttle::default()
        })
}

type PgMfa = AsyncMfa<PostgresStore, ManualClock>;

async fn enroll(mfa: &PgMfa, u: &UserId) -> (Authenticator, Vec<String>) {
    let e = mfa.begin_enrollment(u, "racer@example.com").await.unwrap();
    let phone = Authenticator::from_uri(e.uri().as_str()).unwrap();
    let codes = mfa
        .confirm_enrollment(u, &phone.code_at(T0).unwrap())
        .await
        .unwrap();
    (phone, codes.iter().map(|c| c.as_str().to_owned()).collect())
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// One racer. Does nothing unless started by `a_recovery_code_raced_by_six_processes...`
/// (which sets the environment): connects with its own connection, says it is ready, waits
/// for the shared start instant, presents the code once, and prints the outcome.
#[test]
#[ignore = "a child process of the multi-process race; runs only when that test starts it"]
fn race_child_process() {
    let Ok(url) = std::env::var(ENV_URL) else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let (u, code, ticket) = (user(&var(ENV_USER)), var(ENV_CODE), var(ENV_TICKET));
    let (dir, index) = (PathBuf::from(var(ENV_DIR)), var(ENV_INDEX));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = PostgresStore::connect(&url).await.unwrap();
        let mfa = AsyncMfa::new(store, policy())
            .unwrap()
            .with_clock(ManualClock::new(T0));
        // Warm the connection and the prepared statements.
        let _ = mfa.status(&u).await.unwrap();
        std::fs::write(dir.join(format!("ready-{index}")), b"").unwrap();

        let go = dir.join("go");
        let deadline = Instant::now() + Duration::from_secs(60);
        let start_at: u128 = loop {
            if let Ok(text) = std::fs::read_to_string(&go) {
                if let Ok(t) = text.trim().parse() {
                    break t;
                }
            }
            assert!(Instant::now() < deadline, "no start signal");
            std::thread::sleep(Duration::from_millis(1));
        };
        while unix_nanos() < start_at {
            std::hint::spin_loop();
        }
        let began = unix_nanos();
        let outcome = mfa
            .complete_login(&u, &ticket, SecondFactor::RecoveryCode(&code))
            .await;
        let ended = unix_nanos();
        let outcome = match outcome {
            Ok(auth) => format!("won:{}-left", auth.recovery_codes_left()),
            Err(Error::WrongRecoveryCode { attempts_left, .. }) => {
                format!("refused:WrongRecoveryCode:attempts_left={attempts_left}")
            }
            // Arrived after the winner's success, which spent every open ticket.
            Err(Error::ChallengeInvalid) => "refused:ChallengeInvalid".to_owned(),
            Err(e) => format!("error:{e:?}").replace(char::is_whitespace, "_"),
        };
        println!(
            "{RESULT_PREFIX} index={index} outcome={outcome} began={began} ended={ended} pid={}",
            std::process::id()
        );
    });
}

struct RaceResult {
    index: usize,
    outcome: String,
    began: u128,
    ended: u128,
    pid: u32,
}

fn parse_result(line: &str) -> Option<RaceResult> {
    // libtest may print "test race_child_process ... " on the same line first.
    let rest = &line[line.find(RESULT_PREFIX)? + RESULT_PREFIX.len()..];
    let field = |k: &str| {
        rest.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
    };
    Some(RaceResult {
        index: field("index")?.parse().ok()?,
        outcome: field("outcome")?.to_owned(),
        began: field("began")?.parse().ok()?,
        ended: field("ended")?.parse().ok()?,
        pid: field("pid")?.parse().ok()?,
    })
}

/// Kills the racers still running when the test ends, however it ends.
struct Racers(Vec<Child>);

impl Drop for Racers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

#[test]
fn a_recovery_code_raced_by_six_processes_is_accepted_once() {
    let (server, db) = server_or_skip!("multi_process_race");
    let rt = runtime();
    let url = server.url(&db);
    let racer = user("racer");
    let (mfa, code, tickets, version_before) = block_on(&rt, async {
        let mfa = AsyncMfa::new(PostgresStore::connect(&url).await.unwrap(), policy())
            .unwrap()
            .with_clock(ManualClock::new(T0));
        let (_, codes) = enroll(&mfa, &racer).await;
        // One login ticket per process, as separate sessions would hold.
        let mut tickets = Vec::new();
        for _ in 0..RACERS {
            match mfa.start_login(&racer).await.unwrap() {
                LoginStart::Challenge(c) => tickets.push(c.ticket().to_owned()),
                LoginStart::NoMfa => panic!("an enrolled user needs no second factor"),
            }
        }
        let before = mfa.store().load(&racer).await.unwrap().unwrap().version();
        (mfa, codes[0].clone(), tickets, before)
    });

    let race_dir = server.dir.join(format!("race-{db}"));
    std::fs::create_dir(&race_dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut racers = Racers(Vec::new());
    for (i, ticket) in tickets.iter().enumerate() {
        let out = std::fs::File::create(race_dir.join(format!("out-{i}"))).unwrap();
        let err = std::fs::File::create(race_dir.join(format!("err-{i}"))).unwrap();
        let child = Command::new(&exe)
            .args(["--exact", CHILD_TEST, "--nocapture", "--include-ignored"])
            .args(["--test-threads", "1"])
            .env(ENV_URL, &url)
            .env(ENV_USER, racer.as_str())
            .env(ENV_CODE, &code)
            .env(ENV_TICKET, ticket)
            .env(ENV_DIR, &race_dir)
            .env(ENV_INDEX, i.to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        racers.0.push(child);
    }

    // The start barrier: every process connected and ready, then one instant for all.
    let deadline = Instant::now() + Duration::from_secs(60);
    while (0..RACERS).any(|i| !race_dir.join(format!("ready-{i}")).exists()) {
        for (i, child) in racers.0.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "racer {i} exited before the start ({status}):\n{}",
                    std::fs::read_to_string(race_dir.join(format!("err-{i}"))).unwrap_or_default()
                );
            }
        }
        assert!(Instant::now() < deadline, "the racers never got ready");
        std::thread::sleep(Duration::from_millis(5));
    }
    let go_at = unix_nanos() + 50_000_000; // 50 ms: every process is polling for the file
    let tmp = race_dir.join("go.tmp");
    std::fs::write(&tmp, go_at.to_string()).unwrap();
    std::fs::rename(&tmp, race_dir.join("go")).unwrap();

    for (i, child) in racers.0.iter_mut().enumerate() {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "racer {i} failed ({status}):\n{}",
                    std::fs::read_to_string(race_dir.join(format!("err-{i}"))).unwrap_or_default()
                );
                break;
            }
            assert!(Instant::now() < deadline, "racer {i} did not finish");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let mut results: Vec<RaceResult> = (0..RACERS)
        .map(|i| {
            let out = std::fs::read_to_string(race_dir.join(format!("out-{i}"))).unwrap();
            out.lines()
                .find_map(parse_result)
                .unwrap_or_else(|| panic!("racer {i} reported nothing:\n{out}"))
        })
        .collect();
    results.sort_by_key(|r| r.index);

    let pids: std::collections::HashSet<u32> = results.iter().map(|r| r.pid).collect();
    let first_start = results.iter().map(|r| r.began).min().unwrap();
    let last_start = results.iter().map(|r| r.began).max().unwrap();
    let first_end = results.iter().map(|r| r.ended).min().unwrap();
    eprintln!(
        "[race] {RACERS} processes (distinct pids: {}), one connection each, one recovery code:",
        pids.len()
    );
    for r in &results {
        eprintln!(
            "[race]   process {} (pid {}): {:<28} started +{:>7.3} ms after the signal, took {:>7.3} ms",
            r.index,
            r.pid,
            r.outcome,
            (r.began as f64 - go_at as f64) / 1e6,
            (r.ended - r.began) as f64 / 1e6
        );
    }
    let overlap = first_end as f64 - last_start as f64;
    eprintln!(
        "[race]   starts spread over {:.3} ms; {}",
        (last_start - first_start) as f64 / 1e6,
        if overlap > 0.0 {
            format!(
                "all {RACERS} requests were in flight together for {:.3} ms",
                overlap / 1e6
            )
        } else {
            "the first request finished before the last one started".to_owned()
        }
    );

    assert_eq!(pids.len(), RACERS, "the racers were not separate processes");
    let winners: Vec<_> = results
        .iter()
        .filter(|r| r.outcome.starts_with("won"))
        .collect();
    let charged_losers = results
        .iter()
        .filter(|r| r.outcome.starts_with("refused:WrongRecoveryCode"))
        .count();
    let late = results
        .iter()
        .filter(|r| r.outcome == "refused:ChallengeInvalid")
        .count();
    eprintln!(
        "[race] winners: {}, refused: {} ({charged_losers} for the spent code, {late} for a \
         ticket the win had spent)",
        winners.len(),
        charged_losers + late
    );
    assert_eq!(winners.len(), 1, "exactly one process may use the code");
    assert_eq!(winners[0].outcome, "won:9-left");
    assert_eq!(
        charged_losers + late,
        RACERS - 1,
        "every other process is refused"
    );

    block_on(&rt, async {
        let status = mfa.status(&racer).await.unwrap();
        eprintln!("[race] after the race: {status:?}");
        match status {
            MfaStatus::Active {
                recovery_codes_left,
                failures,
                locked,
                ..
            } => {
                assert_eq!(recovery_codes_left, 9, "the code was spent exactly once");
                // Each loser's attempt was counted when it was charged (step 1, before the
                // code was checked); the winner's success then reset the count of
                // consecutive failures, and spent every open ticket, so no loser can be
                // charged after it.
                assert_eq!(failures, 0);
                assert!(!locked);
            }
            other => panic!("after the race the status is {other:?}"),
        }
        // Every loser refused for the code stored its charged attempt (one write each,
        // however many compare-and-swap retries it took), and the winner stored its charge
        // and its success. A refusal writes nothing more.
        let after = mfa.store().load(&racer).await.unwrap().unwrap().version();
        let writes = after - version_before;
        eprintln!(
            "[race] record version {version_before} -> {after}: {writes} writes (the winner's \
             charge and success, {charged_losers} losers' charges)"
        );
        assert_eq!(writes, 2 + charged_losers as u64);
        // And the code stays spent for everyone.
        let LoginStart::Challenge(c) = mfa.start_login(&racer).await.unwrap() else {
            panic!("expected a challenge");
        };
        let again = mfa
            .complete_login(&racer, c.ticket(), SecondFactor::RecoveryCode(&code))
            .await
            .unwrap_err();
        assert!(
            matches!(again, Error::WrongRecoveryCode { .. }),
            "{again:?}"
        );
    });
}
