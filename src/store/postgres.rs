//! An [`AsyncStore`] on PostgreSQL (feature `postgres`): [`PostgresStore`], on
//! `tokio-postgres`.
//!
//! The schema, the statements, the isolation level the store relies on and what to check on
//! PostgreSQL-compatible distributed databases are documented on [`PostgresStore`], where
//! rustdoc shows them.

use std::fmt;

use thiserror::Error;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, Statement};

use super::{AsyncStore, CasOutcome, StoredRecord};
use crate::UserId;

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &["CREATE TABLE totp_mfa_records (
        user_id TEXT COLLATE \"C\" NOT NULL PRIMARY KEY,
        version BIGINT NOT NULL,
        data    BYTEA NOT NULL
    )"];
const _: () = assert!(MIGRATIONS.len() == PostgresStore::SCHEMA_VERSION as usize);

const CREATE_SCHEMA_TABLE: &str = "CREATE TABLE totp_mfa_schema (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    )";

/// The advisory lock that serializes migrations: the bytes of "totp-mfa" as a big-endian
/// `i64` (0x746f74702d6d6661).
const MIGRATION_LOCK: i64 = i64::from_be_bytes(*b"totp-mfa");

const LOAD: &str = "SELECT version, data FROM totp_mfa_records WHERE user_id = $1";
const UPDATE: &str =
    "UPDATE totp_mfa_records SET version = $1, data = $2 WHERE user_id = $3 AND version = $4";
const INSERT: &str = "INSERT INTO totp_mfa_records (user_id, version, data) VALUES ($1, $2, $3) \
                      ON CONFLICT (user_id) DO NOTHING";

/// Why the PostgreSQL store failed. Never contains record data (see [`PostgresError::Server`]
/// for what is kept of the server's report).
///
/// ```
/// use totp_mfa::{PostgresError, PostgresStore};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let err = PostgresStore::connect("port=not-a-number").await.unwrap_err();
/// assert!(matches!(err, PostgresError::Client(_)));
/// assert_eq!(err.to_string(), "invalid connection string");
/// # }
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The server refused or failed a statement: a missing privilege, a lost serialization
    /// race outside a compare-and-swap, a full disk, a server shutting down, and so on.
    ///
    /// Only the SQLSTATE and the server's primary message are kept. The rest of the report,
    /// in particular its `DETAIL` field (which for a failed constraint can repeat the whole
    /// row: "Failing row contains ..."), is dropped, so that record bytes never reach an
    /// error message or a log.
    #[error("PostgreSQL error {}: {message}", code.code())]
    Server {
        /// The SQLSTATE, e.g. [`SqlState::INSUFFICIENT_PRIVILEGE`].
        code: SqlState,
        /// The server's primary message.
        message: String,
    },
    /// The driver failed without a server report: the connection string is invalid, the
    /// server cannot be reached, the connection was lost (the store does not reconnect; see
    /// [`PostgresStore::is_closed`]), a protocol error.
    #[error(transparent)]
    Client(tokio_postgres::Error),
    /// [`PostgresStore::connect`] was called outside a tokio runtime, which it needs to run
    /// the connection task.
    #[error("PostgresStore::connect needs a tokio runtime")]
    NoRuntime(#[source] tokio::runtime::TryCurrentError),
    /// The database was migrated by a newer version of this crate; it is left untouched.
    #[error(
        "the database has totp-mfa schema version {found}, newer than the version {supported} \
         this build supports"
    )]
    NewerSchema {
        /// The schema version recorded in the database.
        found: i32,
        /// The newest schema version this build knows, [`PostgresStore::SCHEMA_VERSION`].
        supported: u32,
    },
    /// The `totp_mfa_records` table was not made the way this build relies on (created by
    /// hand, say); it is left untouched. The text says what is off, such as a `user_id`
    /// column of type `citext` or with a nondeterministic collation, which would let
    /// `Alice` and `alice` share one record.
    #[error("the totp_mfa_records table does not have the expected shape: {0}")]
    UnexpectedSchema(&'static str),
}

impl PostgresError {
    /// The SQLSTATE of a [`PostgresError::Server`] error, or `None`.
    ///
    /// ```no_run
    /// use totp_mfa::{AsyncStore, PostgresStore, UserId};
    /// use tokio_postgres::error::SqlState;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = PostgresStore::connect("host=/run/postgresql user=mfa").await.unwrap();
    /// match store.load(&UserId::new("42").unwrap()).await {
    ///     Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
    ///         eprintln!("grant SELECT, INSERT, UPDATE on totp_mfa_records to the service: {e}")
    ///     }
    ///     other => drop(other),
    /// }
    /// # }
    /// ```
    #[must_use]
    pub fn code(&self) -> Option<&SqlState> {
        match self {
            PostgresError::Server { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<tokio_postgres::Error> for PostgresError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => PostgresError::Server {
                code: db.code().clone(),
                message: db.message().to_owned(),
            },
            None => PostgresError::Client(e),
        }
    }
}

/// MFA records in a PostgreSQL database, over one `tokio-postgres` connection.
///
/// [`connect`](Self::connect) (or [`from_client`](Self::from_client)) creates the tables on
/// first use and migrates older schemas; a database with a newer schema than this build
/// knows is refused with [`PostgresError::NewerSchema`], and a records table made another
/// way (a `citext` or case-insensitive `user_id`, a missing key) with
/// [`PostgresError::UnexpectedSchema`]. The schema (version 1), in the
/// first schema of the connection's `search_path`:
///
/// ```sql
/// -- One row: the schema version this database is at.
/// CREATE TABLE totp_mfa_schema (
///     id      INTEGER PRIMARY KEY CHECK (id = 1),
///     version INTEGER NOT NULL
/// );
/// -- One row per user with MFA state. `version` holds the u64 record version's bit
/// -- pattern as a signed 64-bit integer (versions above i64::MAX read back negative in SQL).
/// CREATE TABLE totp_mfa_records (
///     user_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
///     version BIGINT NOT NULL,
///     data    BYTEA NOT NULL
/// );
/// ```
///
/// Every [`AsyncStore`] call is one SQL statement, atomic on its own, in autocommit mode
/// (no explicit transaction):
///
/// ```sql
/// -- load
/// SELECT version, data FROM totp_mfa_records WHERE user_id = $1;
/// -- compare_and_swap, expected = Some(v): 1 row updated = Saved, 0 = Conflict
/// UPDATE totp_mfa_records SET version = $1, data = $2 WHERE user_id = $3 AND version = $4;
/// -- compare_and_swap, expected = None: 1 row inserted = Saved, 0 = Conflict
/// INSERT INTO totp_mfa_records (user_id, version, data) VALUES ($1, $2, $3)
///     ON CONFLICT (user_id) DO NOTHING;
/// ```
///
/// That is the compare-and-swap the flows need to keep every code single-use and every
/// failure counted under concurrency (SEC-13, SEC-15, SEC-23, SEC-43).
///
/// # Isolation
/// READ COMMITTED, PostgreSQL's default, suffices, and so does any stricter level:
///
/// * **Update:** when another transaction has updated the row and not yet committed, the
///   `UPDATE` waits for it; if it commits, PostgreSQL re-evaluates the `WHERE` clause
///   against the new row version (PostgreSQL manual, "Transaction Isolation", Read
///   Committed). The version has changed, so 0 rows are updated: of two requests racing from
///   the same version, exactly one is [`CasOutcome::Saved`].
/// * **Insert:** the primary key on `user_id` lets at most one row exist per user; a second
///   concurrent `INSERT ... ON CONFLICT DO NOTHING` inserts 0 rows.
/// * **Serialization failures:** at REPEATABLE READ or SERIALIZABLE, an `UPDATE` that finds
///   the row changed by a transaction that committed after its snapshot was taken fails
///   with SQLSTATE 40001 instead (a deadlock, not expected from these single-row
///   statements, would fail with 40P01). Either error aborts the statement's implicit
///   transaction, so nothing was written: `compare_and_swap` returns
///   [`CasOutcome::Conflict`] and the flows reload the record and re-run, as for a lost
///   race. Every other error, including 40003 (statement completion unknown: the write may
///   or may not have happened), is a [`PostgresError`], and the MFA operation fails closed
///   (SEC-44).
///
/// Conflict here means "nothing was written; reload": after a 40001 the stored version may
/// still be the expected one.
///
/// # PostgreSQL-compatible distributed databases
/// The store needs nothing but the two statements above, atomic per statement, with the
/// `UPDATE` matching only when the version still equals the expected one and the `INSERT`
/// refusing a second row for a user. Whether a database provides that is for its
/// documentation to say and for your tests to show: run the conformance kit
/// (`totp_mfa::conformance::run_async`, feature `conformance`) against it, with several
/// connections. This crate is tested on PostgreSQL only.
///
/// * **CockroachDB** runs transactions at SERIALIZABLE by default, retries contended
///   transactions itself when it can, and otherwise returns a retry error with SQLSTATE
///   40001 to the client (its "Transactions" and "Transaction Retry Error Reference"
///   pages). Here that is a [`CasOutcome::Conflict`], and the flows retry. An ambiguous
///   commit is reported with 40003 and stays an error.
/// * **YugabyteDB** (YSQL) documents READ COMMITTED as mapped to its Snapshot isolation
///   (PostgreSQL's REPEATABLE READ) unless the `yb_enable_read_committed_isolation` flag is
///   on, in which case conflicts are handled inside the database (its "Isolation levels"
///   and "Read Committed" pages); at Snapshot and Serializable, its documentation asks
///   applications to handle serialization errors (40001), which here are a `Conflict`. The
///   store needs the same of it as of PostgreSQL: the two single-row statements above,
///   each atomic.
///
/// What to check there: that the conformance kit passes; that the role can run
/// `pg_advisory_xact_lock` (migrations take it; on a database where it is missing or not a
/// real lock, create the schema from one process before starting the others, or create the
/// tables above yourself and insert `(1, 1)` into `totp_mfa_schema`); that transactional
/// DDL is supported (the migration creates tables inside a transaction); and that the
/// database's error codes for a lost race are 40001 or 40P01 (any other code fails the
/// operation closed rather than retrying).
///
/// # Operation
/// * **Connection:** one connection, shared by every call: requests from many tasks are
///   pipelined on it and run one at a time on the server. For more throughput, run several
///   stores. The store does not reconnect: once the connection is lost, every call fails
///   with [`PostgresError::Client`] (and every MFA operation fails closed) until you replace
///   the store; [`is_closed`](Self::is_closed) tells.
/// * **Timeouts:** the store sets none. A statement waits as long as the server lets it,
///   for instance on a row lock held by a session left idle in a transaction or by an
///   `ALTER TABLE`, and the calls pipelined behind it on the same connection wait too.
///   Bound them in the connection string: `options='-c lock_timeout=2s -c
///   statement_timeout=5s'`; a call that times out fails with
///   [`PostgresError::Server`] and the MFA operation fails closed.
/// * **TLS:** [`connect`](Self::connect) connects without TLS (for a local socket or a
///   private network). For TLS, connect with your TLS connector and pass the client to
///   [`from_client`](Self::from_client).
/// * **Privileges:** the service's role needs `SELECT, INSERT, UPDATE` on
///   `totp_mfa_records` and `SELECT` on `totp_mfa_schema`. Creating or migrating the schema
///   also needs `CREATE` on the schema; a database that is up to date needs no DDL.
/// * **User ids** are stored as `TEXT` with the `"C"` collation, so they compare byte for
///   byte as [`UserId`] promises, in a UTF-8 database. PostgreSQL text cannot hold a NUL
///   character, and [`UserId::new`] refuses one.
/// * **Versions:** record versions are `u64`, `BIGINT` is `i64`; the column holds the
///   version's bit pattern (`v as i64`, read back `as u64`), so every `u64` round-trips (as
///   the store contract and its conformance kit require) and versions above `i64::MAX`
///   look negative to SQL tools. The flows count versions up from 1, one per write.
/// * **Secrets:** the records hold TOTP secrets (sealed with the `encryption` feature) and
///   hashed recovery codes: restrict the table to the service's role, and remember that
///   backups and replicas hold it too (RFC 6238 section 5.1, SEC-08). Errors never carry
///   record bytes, and `Debug` shows none.
/// * **Cancellation:** dropping a `compare_and_swap` future after its statement was sent
///   does not recall it; the write may still happen. The flows grant nothing before a write
///   is confirmed, so this errs on the closed side.
///
/// ```no_run
/// use totp_mfa::{AsyncMfa, AsyncStore, CasOutcome, Policy, PostgresStore, StoredRecord, UserId};
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::connect("host=/run/postgresql user=mfa dbname=app").await?;
/// let bob = UserId::new("bob")?;
/// assert_eq!(store.compare_and_swap(&bob, None, StoredRecord::new(1, vec![1])).await?, CasOutcome::Saved);
/// assert_eq!(store.compare_and_swap(&bob, None, StoredRecord::new(1, vec![2])).await?, CasOutcome::Conflict);
/// let record = store.load(&bob).await?.unwrap();
/// assert_eq!((record.version(), record.data()), (1, &[1u8][..]));
///
/// let mfa = AsyncMfa::new(store, Policy::new("Example Inc"))?;
/// # drop(mfa); Ok(()) }
/// ```
pub struct PostgresStore {
    client: Client,
    load: Statement,
    update: Statement,
    insert: Statement,
}

impl PostgresStore {
    /// The schema version this build creates and understands.
    ///
    /// ```
    /// assert_eq!(totp_mfa::PostgresStore::SCHEMA_VERSION, 1);
    /// ```
    pub const SCHEMA_VERSION: u32 = 1;

    /// Connects without TLS, runs the connection on a task spawned on the current tokio
    /// runtime (it ends when the store is dropped), and creates or migrates the schema.
    ///
    /// `config` is a libpq-style connection string, `host=/run/postgresql user=mfa
    /// dbname=app` or `postgresql://mfa@localhost/app`, as `tokio_postgres::Config` parses
    /// it. It is not kept, so a password in it appears in no `Debug` output.
    ///
    /// ```no_run
    /// use totp_mfa::{AsyncMfa, Policy, PostgresStore};
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PostgresStore::connect("postgresql://mfa@localhost/app").await?;
    /// let mfa = AsyncMfa::new(store, Policy::new("Example Inc"))?;
    /// # drop(mfa); Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`PostgresError::NoRuntime`] outside a tokio runtime; [`PostgresError::Client`] for
    /// an invalid connection string or a server that cannot be reached;
    /// [`PostgresError::Server`] when the server refuses the login or the schema cannot be
    /// created or read; [`PostgresError::NewerSchema`] when the database was migrated by a
    /// newer build; [`PostgresError::UnexpectedSchema`] when the records table has another
    /// shape.
    pub async fn connect(config: &str) -> Result<Self, PostgresError> {
        let config: tokio_postgres::Config = config.parse()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(PostgresError::NoRuntime)?;
        let (client, connection) = config.connect(NoTls).await?;
        // The connection's own error, if any, reaches the caller as a closed client.
        drop(runtime.spawn(async move {
            let _ = connection.await;
        }));
        Self::from_client(client).await
    }

    /// Uses a connected client, whose connection the caller already drives (a TLS
    /// connection, say), and creates or migrates the schema. The store takes the client
    /// over: do not share it, nor leave it inside a transaction.
    ///
    /// ```no_run
    /// use totp_mfa::PostgresStore;
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (client, connection) =
    ///     tokio_postgres::connect("host=/run/postgresql user=mfa", tokio_postgres::NoTls).await?;
    /// tokio::spawn(connection);
    /// let store = PostgresStore::from_client(client).await?;
    /// # drop(store); Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`PostgresError::NewerSchema`] when the database was migrated by a newer build;
    /// [`PostgresError::UnexpectedSchema`] when the records table has another shape;
    /// [`PostgresError::Server`] or [`PostgresError::Client`] when the schema cannot be
    /// created or read, or the connection fails.
    pub async fn from_client(mut client: Client) -> Result<Self, PostgresError> {
        migrate(&mut client).await?;
        let load = client.prepare_typed(LOAD, &[Type::TEXT]).await?;
        let update = client
            .prepare_typed(UPDATE, &[Type::INT8, Type::BYTEA, Type::TEXT, Type::INT8])
            .await?;
        let insert = client
            .prepare_typed(INSERT, &[Type::TEXT, Type::INT8, Type::BYTEA])
            .await?;
        Ok(PostgresStore {
            client,
            load,
            update,
            insert,
        })
    }

    /// Whether the connection is lost, for good: every call now fails, and the store should
    /// be replaced.
    ///
    /// ```no_run
    /// use totp_mfa::PostgresStore;
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PostgresStore::connect("host=/run/postgresql user=mfa").await?;
    /// assert!(!store.is_closed());
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// Creates or upgrades the schema in one transaction, under a transaction-scoped advisory
/// lock, so that processes connecting to a new database at once create it once. A database
/// that is up to date gets no DDL, so a role without `CREATE` can connect to it.
async fn migrate(client: &mut Client) -> Result<(), PostgresError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('totp_mfa_schema') IS NOT NULL", &[])
        .await?
        .try_get(0)?;
    let found: i32 = if exists {
        match tx
            .query_opt("SELECT version FROM totp_mfa_schema WHERE id = 1", &[])
            .await?
        {
            Some(row) => row.try_get(0)?,
            None => 0,
        }
    } else {
        0
    };
    let supported = PostgresStore::SCHEMA_VERSION;
    if i64::from(found) > i64::from(supported) {
        return Err(PostgresError::NewerSchema { found, supported });
    }
    // A negative version is no version of ours: run every migration (and fail on the
    // existing tables) rather than guess.
    let from = usize::try_from(found).unwrap_or(0);
    if from == MIGRATIONS.len() {
        check_shape(&tx).await?;
        tx.rollback().await?; // Up to date: nothing was written.
        return Ok(());
    }
    if !exists {
        tx.batch_execute(CREATE_SCHEMA_TABLE).await?;
    }
    for migration in &MIGRATIONS[from..] {
        tx.batch_execute(migration).await?;
    }
    let version = i32::try_from(supported).unwrap_or(i32::MAX);
    tx.execute(
        "INSERT INTO totp_mfa_schema (id, version) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        &[&version],
    )
    .await?;
    check_shape(&tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The columns of `totp_mfa_records` (name, type, whether its collation is deterministic)
/// and whether a unique, non-partial index keys on `user_id` alone with a deterministic
/// collation; from the catalogues, readable by any role.
const SHAPE: &str = "
    SELECT a.attname::text, format_type(a.atttypid, a.atttypmod),
           coalesce(c.collisdeterministic, true),
           EXISTS (SELECT 1 FROM pg_index i
                    WHERE i.indrelid = a.attrelid AND i.indisunique AND i.indpred IS NULL
                      AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum
                      AND coalesce((SELECT ic.collisdeterministic FROM pg_collation ic
                                     WHERE ic.oid = i.indcollation[0]), true))
      FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation
     WHERE a.attrelid = 'totp_mfa_records'::regclass AND a.attnum > 0 AND NOT a.attisdropped";

/// Checks that the records table is keyed by `user_id` compared byte for byte (`text`, a
/// deterministic collation, a unique index on it alone) and that `version` and `data` have
/// the types the statements bind.
async fn check_shape(tx: &tokio_postgres::Transaction<'_>) -> Result<(), PostgresError> {
    let mut user_id = None;
    let (mut version, mut data) = (false, false);
    for row in tx.query(SHAPE, &[]).await? {
        let name: String = row.try_get(0)?;
        let ty: String = row.try_get(1)?;
        match name.as_str() {
            "user_id" => {
                user_id = Some((ty, row.try_get::<_, bool>(2)?, row.try_get::<_, bool>(3)?))
            }
            "version" => version = ty == "bigint",
            "data" => data = ty == "bytea",
            _ => {}
        }
    }
    let Some((ty, deterministic, unique)) = user_id else {
        return Err(PostgresError::UnexpectedSchema(
            "there is no user_id column",
        ));
    };
    if ty != "text" || !deterministic {
        return Err(PostgresError::UnexpectedSchema(
            "user_id is not text with a deterministic collation, so ids that differ in case \
             or accents could share a record",
        ));
    }
    if !unique {
        return Err(PostgresError::UnexpectedSchema(
            "user_id is not the table's key under a deterministic collation",
        ));
    }
    if !(version && data) {
        return Err(PostgresError::UnexpectedSchema(
            "version is not bigint, or data is not bytea",
        ));
    }
    Ok(())
}

/// A lost serialization race or a deadlock: the statement's transaction was rolled back, so
/// nothing was written, and re-running on a fresh read is the remedy.
fn rolled_back_by_conflict(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
    )
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("closed", &self.client.is_closed())
            .finish_non_exhaustive()
    }
}

impl AsyncStore for PostgresStore {
    type Error = PostgresError;

    async fn load(&self, user: &UserId) -> Result<Option<StoredRecord>, Self::Error> {
        let Some(row) = self.client.query_opt(&self.load, &[&user.as_str()]).await? else {
            return Ok(None);
        };
        let version: i64 = row.try_get(0)?;
        // The column holds the u64's bit pattern (see the type's docs).
        Ok(Some(StoredRecord::new(version as u64, row.try_get(1)?)))
    }

    async fn compare_and_swap(
        &self,
        user: &UserId,
        expected: Option<u64>,
        new: StoredRecord,
    ) -> Result<CasOutcome, Self::Error> {
        // Bit patterns, as `load` reads them back.
        let version = new.version() as i64;
        let written = match expected {
            Some(current) => {
                let current = current as i64;
                self.client
                    .execute(
                        &self.update,
                        &[&version, &new.data(), &user.as_str(), &current],
                    )
                    .await
            }
            None => {
                self.client
                    .execute(&self.insert, &[&user.as_str(), &version, &new.data()])
                    .await
            }
        };
        match written {
            Ok(1) => Ok(CasOutcome::Saved),
            Ok(_) => Ok(CasOutcome::Conflict),
            Err(e) if rolled_back_by_conflict(&e) => Ok(CasOutcome::Conflict),
            Err(e) => Err(e.into()),
        }
    }
}
