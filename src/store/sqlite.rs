//! A [`Store`] on SQLite (feature `sqlite`): [`SqliteStore`].
//!
//! # Schema
//! Created and migrated by [`SqliteStore::open`] (schema version 1):
//!
//! ```sql
//! -- One row: the schema version this database is at.
//! CREATE TABLE totp_mfa_schema (
//!     id      INTEGER PRIMARY KEY CHECK (id = 1),
//!     version INTEGER NOT NULL
//! );
//! -- One row per user with MFA state. `version` holds the u64 record version's bit
//! -- pattern as a signed 64-bit integer (versions above i64::MAX read back negative in SQL).
//! CREATE TABLE totp_mfa_records (
//!     user_id TEXT NOT NULL PRIMARY KEY,
//!     version INTEGER NOT NULL,
//!     data    BLOB NOT NULL
//! );
//! ```
//!
//! The statements, one per call, each atomic on its own:
//!
//! ```sql
//! -- load
//! SELECT version, data FROM totp_mfa_records WHERE user_id = ?1;
//! -- compare_and_swap, expected = Some(v): 1 row changed = Saved, 0 = Conflict
//! UPDATE totp_mfa_records SET version = ?1, data = ?2 WHERE user_id = ?3 AND version = ?4;
//! -- compare_and_swap, expected = None: 1 row changed = Saved, 0 = Conflict
//! INSERT INTO totp_mfa_records (user_id, version, data) VALUES (?1, ?2, ?3)
//!     ON CONFLICT (user_id) DO NOTHING;
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use thiserror::Error;

use super::{CasOutcome, Store, StoredRecord};
use crate::UserId;

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &["CREATE TABLE totp_mfa_records (
        user_id TEXT NOT NULL PRIMARY KEY,
        version INTEGER NOT NULL,
        data    BLOB NOT NULL
    );"];
const _: () = assert!(MIGRATIONS.len() == SqliteStore::SCHEMA_VERSION as usize);

const LOAD: &str = "SELECT version, data FROM totp_mfa_records WHERE user_id = ?1";
const UPDATE: &str =
    "UPDATE totp_mfa_records SET version = ?1, data = ?2 WHERE user_id = ?3 AND version = ?4";
const INSERT: &str = "INSERT INTO totp_mfa_records (user_id, version, data) VALUES (?1, ?2, ?3) \
                      ON CONFLICT (user_id) DO NOTHING";

/// Why the SQLite store failed. Never contains record data.
///
/// ```
/// use totp_mfa::{SqliteError, SqliteStore};
/// let err = SqliteStore::open("/nonexistent-dir/mfa.db").unwrap_err();
/// assert!(matches!(err, SqliteError::Sqlite(_)));
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// SQLite or the driver failed: the file could not be opened, a lock was not granted
    /// within the busy timeout (5 s), the disk is full, and so on.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The database was migrated by a newer version of this crate; it is left untouched.
    #[error(
        "the database has totp-mfa schema version {found}, newer than the version {supported} \
         this build supports"
    )]
    NewerSchema {
        /// The schema version recorded in the database.
        found: i64,
        /// The newest schema version this build knows, [`SqliteStore::SCHEMA_VERSION`].
        supported: u32,
    },
    /// The `totp_mfa_records` table was not made the way this build relies on (created by
    /// hand, say); it is left untouched. The text says what is off, such as a `user_id`
    /// key with a case-insensitive collation, which would let `Alice` and `alice` share
    /// one record.
    #[error("the totp_mfa_records table does not have the expected shape: {0}")]
    UnexpectedSchema(&'static str),
}

/// MFA records in an SQLite database: a file shared by any number of stores and processes,
/// or a private in-memory database.
///
/// [`open`](Self::open) creates the tables on first use and migrates older schemas, inside
/// a transaction; a database with a newer schema than this build knows is refused with
/// [`SqliteError::NewerSchema`]. The schema (version 1):
///
/// ```sql
/// CREATE TABLE totp_mfa_schema (
///     id      INTEGER PRIMARY KEY CHECK (id = 1),
///     version INTEGER NOT NULL
/// );
/// CREATE TABLE totp_mfa_records (
///     user_id TEXT NOT NULL PRIMARY KEY,
///     version INTEGER NOT NULL,
///     data    BLOB NOT NULL
/// );
/// ```
///
/// Every [`Store`] call is one SQL statement, atomic on its own: `compare_and_swap` is an
/// `UPDATE ... WHERE user_id = ? AND version = ?` (or an `INSERT ... ON CONFLICT DO
/// NOTHING` when no record is expected) whose changed-row count decides
/// [`CasOutcome::Saved`] or [`CasOutcome::Conflict`], so it is linearizable across threads,
/// stores and processes sharing the file.
///
/// * **Threads:** the connection sits behind a `Mutex`, so calls from one store run one at
///   a time. That costs little: SQLite serializes writers to a database anyway. Share one
///   store per process (e.g. in an `Arc`).
/// * **Processes:** file databases use WAL journal mode (readers do not block the writer)
///   and a 5-second busy timeout, after which a call fails with [`SqliteError::Sqlite`]
///   and the MFA operation fails closed. Calls queued behind the store's `Mutex` wait for
///   the ones ahead of them, so while another connection holds the write lock a call can
///   wait several busy timeouts: keep other writers' transactions short. `synchronous` stays `FULL`: a spent code must not
///   come back after a power cut.
/// * **Versions:** record versions are `u64`, SQLite integers are `i64`; the column holds the
///   version's bit pattern (`v as i64`, read back `as u64`), so every `u64` round-trips and
///   versions above `i64::MAX` look negative to SQL tools.
/// * **Secrets:** the records hold TOTP secrets and hashed recovery codes. `secure_delete`
///   is on, so overwritten records are zeroed in the database file, but an old copy can
///   stay in the `-wal` file until a checkpoint reuses it: seal secrets at rest (feature
///   `encryption`). A new file is created readable by its owner only (mode `0600` on Unix,
///   which SQLite gives its `-wal` and `-shm` files too); keep an existing one that way.
/// * **Poisoning:** a panic in another thread does not poison the store: each call is one
///   statement, so the database never holds half a write.
///
/// ```
/// use totp_mfa::{CasOutcome, SqliteStore, Store, StoredRecord, UserId};
/// let store = SqliteStore::open_in_memory()?;
/// let bob = UserId::new("bob").unwrap();
/// assert_eq!(store.compare_and_swap(&bob, None, StoredRecord::new(1, vec![1]))?, CasOutcome::Saved);
/// assert_eq!(store.compare_and_swap(&bob, None, StoredRecord::new(1, vec![2]))?, CasOutcome::Conflict);
/// assert_eq!(store.compare_and_swap(&bob, Some(1), StoredRecord::new(2, vec![3]))?, CasOutcome::Saved);
/// let record = store.load(&bob)?.unwrap();
/// assert_eq!((record.version(), record.data()), (2, &[3u8][..]));
/// # Ok::<(), totp_mfa::SqliteError>(())
/// ```
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The path given to `open`, for `Debug`; `None` in memory.
    path: Option<PathBuf>,
}

impl SqliteStore {
    /// The schema version this build creates and understands.
    ///
    /// ```
    /// assert_eq!(totp_mfa::SqliteStore::SCHEMA_VERSION, 1);
    /// ```
    pub const SCHEMA_VERSION: u32 = 1;

    /// Opens (creating if needed) the database file at `path`, switches it to WAL journal
    /// mode, and creates or migrates the schema.
    ///
    /// ```
    /// use totp_mfa::{Mfa, Policy, SqliteStore};
    /// let path = std::env::temp_dir().join(format!("totp-mfa-doc-{}.db", std::process::id()));
    /// let mfa = Mfa::new(SqliteStore::open(&path)?, Policy::new("Example")).unwrap();
    /// # drop(mfa);
    /// # for ext in ["", "-wal", "-shm"] {
    /// #     let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    /// # }
    /// # Ok::<(), totp_mfa::SqliteError>(())
    /// ```
    ///
    /// # Errors
    /// [`SqliteError::NewerSchema`] when the database was migrated by a newer build;
    /// [`SqliteError::Sqlite`] when the file cannot be opened or is not an SQLite database,
    /// or the schema cannot be created.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SqliteError> {
        let path = path.as_ref();
        create_private(path);
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        set_wal(&conn)?;
        Self::init(conn, Some(path.to_owned()))
    }

    /// Opens a new, private in-memory database: for tests and demos. Its records are lost
    /// when the store is dropped, and no other store can see them.
    ///
    /// ```
    /// use totp_mfa::{Mfa, Policy, SqliteStore};
    /// let mfa = Mfa::new(SqliteStore::open_in_memory()?, Policy::new("Example")).unwrap();
    /// # drop(mfa);
    /// # Ok::<(), totp_mfa::SqliteError>(())
    /// ```
    ///
    /// # Errors
    /// [`SqliteError::Sqlite`] if SQLite cannot allocate the database.
    pub fn open_in_memory() -> Result<Self, SqliteError> {
        Self::init(Connection::open_in_memory()?, None)
    }

    fn init(mut conn: Connection, path: Option<PathBuf>) -> Result<Self, SqliteError> {
        conn.pragma_update(None, "secure_delete", true)?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The connection. A panic while it was held cannot have left a half-done write (every
    /// call is one statement, and cached statements are reset on drop), so poisoning is
    /// ignored.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Switches a file database to WAL journal mode (a no-op once it is; ":memory:" stays
/// "memory"). Switching needs an exclusive lock, and SQLite answers `SQLITE_BUSY` at once,
/// without waiting on the busy timeout, when another connection is switching the same new
/// file: so retry until the busy timeout has passed.
fn set_wal(conn: &Connection) -> Result<(), rusqlite::Error> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
        {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                thread::sleep(Duration::from_millis(5));
            }
            other => return other.map(drop),
        }
    }
}

/// Creates a database file that does not exist yet readable and writable by its owner
/// only (SEC-08: it holds secrets); SQLite gives its `-wal` and `-shm` files the same
/// mode. An existing file keeps its mode. Errors are left for `Connection::open` to report;
/// `:memory:` and `file:` URIs are SQLite's to interpret.
fn create_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let name = path.as_os_str();
        if name.is_empty() || name == ":memory:" || path.starts_with("file:") {
            return;
        }
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The schema version recorded in the database, read without taking the write lock; `0`
/// when there is no schema table yet.
fn schema_version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    let exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'totp_mfa_schema'",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    Ok(conn
        .query_row(
            "SELECT version FROM totp_mfa_schema WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Checks that `user_id` is the key of `totp_mfa_records` and compares byte for byte: a
/// unique index on exactly that column with the `BINARY` collation, and no unique index on
/// it with another collation (`NOCASE` would make `Alice` and `alice` one user).
fn check_shape(conn: &Connection) -> Result<(), SqliteError> {
    let mut columns =
        conn.prepare("SELECT name, coalesce(type, '') FROM pragma_table_info('totp_mfa_records')")?;
    let columns: Vec<(String, String)> = columns
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for needed in ["user_id", "version", "data"] {
        if !columns.iter().any(|(c, _)| c == needed) {
            return Err(SqliteError::UnexpectedSchema(
                "a column user_id, version or data is missing",
            ));
        }
    }
    if columns
        .iter()
        .any(|(c, declared)| c == "user_id" && !keeps_text_as_is(declared))
    {
        return Err(SqliteError::UnexpectedSchema(
            "user_id has a numeric type, so ids such as \"42\" and \"042\" would share a \
             record; declare it TEXT",
        ));
    }
    let mut indexes = conn.prepare(
        "SELECT name FROM pragma_index_list('totp_mfa_records') WHERE \"unique\" AND NOT partial",
    )?;
    let indexes: Vec<String> = indexes
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut binary_key = false;
    for index in indexes {
        let mut keys = conn.prepare(
            "SELECT coalesce(name, ''), coalesce(coll, '') FROM pragma_index_xinfo(?1) WHERE key",
        )?;
        let keys: Vec<(String, String)> = keys
            .query_map([&index], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        if let [(column, collation)] = keys.as_slice() {
            if column == "user_id" {
                if !collation.eq_ignore_ascii_case("BINARY") {
                    return Err(SqliteError::UnexpectedSchema(
                        "user_id is unique under a collation other than BINARY, so ids that \
                         differ in case or spacing could share a record",
                    ));
                }
                binary_key = true;
            }
        }
    }
    if binary_key {
        Ok(())
    } else {
        Err(SqliteError::UnexpectedSchema(
            "user_id is not the table's primary key",
        ))
    }
}

/// Whether a column declared with this type keeps text values as they are: SQLite's TEXT
/// affinity, or no affinity (BLOB or no type). INTEGER, REAL and NUMERIC affinity turn
/// numeric-looking text such as `"042"`, `"+42"` or `"4.2e1"` into the same number.
/// The rules are SQLite's "Determination Of Column Affinity", in their order.
fn keeps_text_as_is(declared: &str) -> bool {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") {
        return false;
    }
    if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        return true;
    }
    if t.contains("BLOB") || t.trim().is_empty() {
        return true;
    }
    false // REAL, FLOA, DOUB: REAL affinity; anything else: NUMERIC
}

/// Creates or upgrades the schema in one `IMMEDIATE` transaction, so that two processes
/// opening a new file at once do not both create it. A database already up to date is only
/// read: opening it takes no write lock, so a store opens while another process writes.
fn migrate(conn: &mut Connection) -> Result<(), SqliteError> {
    let supported = SqliteStore::SCHEMA_VERSION;
    let found = schema_version(conn)?;
    if found > i64::from(supported) {
        return Err(SqliteError::NewerSchema { found, supported });
    }
    if found == i64::from(supported) {
        return check_shape(conn);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS totp_mfa_schema (
            id      INTEGER PRIMARY KEY CHECK (id = 1),
            version INTEGER NOT NULL
        );",
    )?;
    let found: i64 = tx
        .query_row(
            "SELECT version FROM totp_mfa_schema WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    if found > i64::from(supported) {
        return Err(SqliteError::NewerSchema { found, supported });
    }
    let from =
        usize::try_from(found).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, found))?;
    if from == MIGRATIONS.len() {
        // Another process migrated it since the read above; this transaction rolls back
        // having written nothing.
        check_shape(&tx)?;
        return Ok(());
    }
    for migration in &MIGRATIONS[from..] {
        tx.execute_batch(migration)?;
    }
    tx.execute(
        "INSERT INTO totp_mfa_schema (id, version) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        [supported],
    )?;
    check_shape(&tx)?;
    tx.commit()?;
    Ok(())
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl Store for SqliteStore {
    type Error = SqliteError;

    fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Self::Error> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(LOAD)?;
        let record = stmt
            .query_row([user.as_str()], |row| {
                let version: i64 = row.get(0)?;
                Ok(StoredRecord::new(version as u64, row.get(1)?))
            })
            .optional()?;
        Ok(record)
    }

    fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, Self::Error> {
        let conn = self.conn();
        let version = new.version() as i64;
        let changed = match expected {
            Some(current) => conn.prepare_cached(UPDATE)?.execute(params![
                version,
                new.data(),
                user.as_str(),
                current as i64
            ])?,
            None => {
                conn.prepare_cached(INSERT)?
                    .execute(params![user.as_str(), version, new.data()])?
            }
        };
        Ok(if changed == 1 {
            CasOutcome::Saved
        } else {
            CasOutcome::Conflict
        })
    }
}
