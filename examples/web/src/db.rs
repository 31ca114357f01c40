//! The example's own data: accounts and sessions, in two tables beside the MFA store's
//! (`totp_mfa_records`) in the same SQLite file.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::app::AppError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS web_users (
    -- AUTOINCREMENT: an id is never reused, so a new account can never inherit the MFA
    -- record (keyed by this id) of a deleted one.
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    -- 1 once MFA was activated; cleared only by Disable MFA with a fresh code. While it
    -- is set and MFA is not active (a reset not finished), the password alone signs no one in.
    mfa_required  INTEGER NOT NULL DEFAULT 0,
    -- Wrong passwords in a row, and until when the next attempt is refused (unix seconds).
    failed_logins INTEGER NOT NULL DEFAULT 0,
    login_blocked_until INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS web_sessions (
    -- SHA-256 of the cookie value: a copy of this table lets no one in.
    id_hash        BLOB PRIMARY KEY,
    -- 'anon': before sign-in (holds only the CSRF token); 'pending': the password was right
    -- and the second factor is awaited (holds the challenge ticket, grants nothing else);
    -- 'user': signed in.
    kind           TEXT NOT NULL CHECK (kind IN ('anon', 'pending', 'user')),
    user_id        INTEGER REFERENCES web_users (id) ON DELETE CASCADE,
    csrf           TEXT NOT NULL,
    ticket         TEXT,
    -- For 'user' sessions: the MFA credential generation the sign-in used (NULL: no MFA).
    mfa_generation INTEGER,
    expires_at     INTEGER NOT NULL,
    -- 1 on the session that began the user's MFA setup in progress: only it may see the
    -- key and confirm it (and so receive the recovery codes).
    setup_owner    INTEGER NOT NULL DEFAULT 0,
    -- SHA-256 of the recovery codes last shown to this session: the only ones it may
    -- download.
    codes_digest   BLOB,
    flash_tone     TEXT,
    flash          TEXT,
    CHECK ((kind = 'anon') = (user_id IS NULL)),
    CHECK ((kind = 'pending') = (ticket IS NOT NULL))
);
-- Facts about this database. 'sealing_key_check': SHA-256 of a fixed label and the key
-- sealing the TOTP secrets, recorded at the first start, so that a server given another key
-- refuses to start instead of failing every MFA sign-in.
CREATE TABLE IF NOT EXISTS web_meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS web_sessions_expiry ON web_sessions (expires_at);
CREATE INDEX IF NOT EXISTS web_sessions_user ON web_sessions (user_id);
CREATE INDEX IF NOT EXISTS web_sessions_anon ON web_sessions (expires_at) WHERE kind = 'anon';
";

/// Columns added after the first version, for databases created before them.
const MIGRATIONS: &[(&str, &str, &str)] = &[
    ("web_users", "mfa_required", "INTEGER NOT NULL DEFAULT 0"),
    ("web_users", "failed_logins", "INTEGER NOT NULL DEFAULT 0"),
    (
        "web_users",
        "login_blocked_until",
        "INTEGER NOT NULL DEFAULT 0",
    ),
    ("web_sessions", "setup_owner", "INTEGER NOT NULL DEFAULT 0"),
    ("web_sessions", "codes_digest", "BLOB"),
];

/// Wrong passwords allowed in a row before each further one starts a delay.
pub(crate) const FREE_LOGIN_FAILURES: i64 = 5;
/// The first delay, in seconds; it doubles with each further wrong password...
pub(crate) const FIRST_LOGIN_DELAY: i64 = 30;
/// ...up to this.
pub(crate) const MAX_LOGIN_DELAY: i64 = 15 * 60;

/// A connection shared by the handlers; every call runs on tokio's blocking pool.
#[derive(Clone)]
pub(crate) struct Db {
    conn: Arc<Mutex<Connection>>,
}

/// An account.
#[derive(Debug, Clone)]
pub(crate) struct UserRow {
    pub(crate) id: i64,
    pub(crate) email: String,
    pub(crate) password_hash: String,
    pub(crate) mfa_required: bool,
}

/// A session row, joined with its user's email.
#[derive(Debug, Clone)]
pub(crate) struct SessionRow {
    pub(crate) kind: String,
    pub(crate) user_id: Option<i64>,
    pub(crate) email: Option<String>,
    pub(crate) csrf: String,
    pub(crate) ticket: Option<String>,
    pub(crate) mfa_generation: Option<i64>,
    pub(crate) expires_at: i64,
    pub(crate) setup_owner: bool,
    pub(crate) codes_digest: Option<Vec<u8>>,
    pub(crate) mfa_required: bool,
}

/// A new session to insert.
pub(crate) struct NewSessionRow {
    pub(crate) id_hash: [u8; 32],
    pub(crate) kind: &'static str,
    pub(crate) user_id: Option<i64>,
    pub(crate) csrf: String,
    pub(crate) ticket: Option<String>,
    pub(crate) mfa_generation: Option<i64>,
    pub(crate) expires_at: i64,
    pub(crate) flash: Option<(String, String)>,
}

impl Db {
    /// Opens (and creates) the tables in the file at `path`.
    pub(crate) fn open(path: &Path) -> rusqlite::Result<Db> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "secure_delete", true)?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Records `check` as the sealing key's check value if none is recorded yet; `false`
    /// when another one is.
    pub(crate) fn sealing_key_matches(&self, check: &[u8; 32]) -> rusqlite::Result<bool> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        conn.execute(
            "INSERT INTO web_meta (name, value) VALUES ('sealing_key_check', ?1)
             ON CONFLICT (name) DO NOTHING",
            [&check[..]],
        )?;
        let stored: Vec<u8> = conn.query_row(
            "SELECT value FROM web_meta WHERE name = 'sealing_key_check'",
            [],
            |r| r.get(0),
        )?;
        Ok(stored == check)
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|e| AppError::new(format!("database task: {e}")))?
        .map_err(|e| AppError::new(format!("database: {e}")))
    }
}

/// Adds the columns a database from an older version lacks.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    for (table, column, decl) in MIGRATIONS {
        let mut stmt = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if !names.iter().any(|n| n == column) {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
        }
    }
    Ok(())
}

pub(crate) fn find_user_by_email(
    conn: &Connection,
    email: &str,
) -> rusqlite::Result<Option<UserRow>> {
    conn.query_row(
        "SELECT id, email, password_hash, mfa_required FROM web_users WHERE email = ?1",
        [email],
        |r| {
            Ok(UserRow {
                id: r.get(0)?,
                email: r.get(1)?,
                password_hash: r.get(2)?,
                mfa_required: r.get(3)?,
            })
        },
    )
    .optional()
}

/// Inserts an account; `None` when the email is taken.
pub(crate) fn insert_user(
    conn: &Connection,
    email: &str,
    password_hash: &str,
    now: i64,
) -> rusqlite::Result<Option<i64>> {
    let changed = conn.execute(
        "INSERT INTO web_users (email, password_hash, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (email) DO NOTHING",
        params![email, password_hash, now],
    )?;
    Ok((changed == 1).then(|| conn.last_insert_rowid()))
}

/// At most this many anonymous sessions (a visit before sign-in, holding only its CSRF
/// token and perhaps a message) are kept: beyond it the oldest are dropped, so a flood of
/// cookie-less requests cannot grow the table without bound. A visitor whose anonymous
/// session was dropped gets "your session expired, try again" on the form, and a new one.
pub(crate) const MAX_ANON_SESSIONS: i64 = 10_000;

pub(crate) fn insert_session(conn: &Connection, s: &NewSessionRow) -> rusqlite::Result<()> {
    let (tone, text) = match &s.flash {
        Some((tone, text)) => (Some(tone.as_str()), Some(text.as_str())),
        None => (None, None),
    };
    conn.execute(
        "INSERT INTO web_sessions
             (id_hash, kind, user_id, csrf, ticket, mfa_generation, expires_at, flash_tone, flash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            &s.id_hash[..],
            s.kind,
            s.user_id,
            s.csrf,
            s.ticket,
            s.mfa_generation,
            s.expires_at,
            tone,
            text
        ],
    )?;
    if s.kind == "anon" {
        conn.execute(
            "DELETE FROM web_sessions WHERE id_hash IN (
                 SELECT id_hash FROM web_sessions WHERE kind = 'anon'
                  ORDER BY expires_at DESC LIMIT -1 OFFSET ?1)",
            [MAX_ANON_SESSIONS],
        )?;
    }
    Ok(())
}

pub(crate) fn load_session(
    conn: &Connection,
    id_hash: &[u8; 32],
) -> rusqlite::Result<Option<SessionRow>> {
    conn.query_row(
        "SELECT s.kind, s.user_id, u.email, s.csrf, s.ticket, s.mfa_generation, s.expires_at,
                s.setup_owner, s.codes_digest, coalesce(u.mfa_required, 0)
           FROM web_sessions s LEFT JOIN web_users u ON u.id = s.user_id
          WHERE s.id_hash = ?1",
        [&id_hash[..]],
        |r| {
            Ok(SessionRow {
                kind: r.get(0)?,
                user_id: r.get(1)?,
                email: r.get(2)?,
                csrf: r.get(3)?,
                ticket: r.get(4)?,
                mfa_generation: r.get(5)?,
                expires_at: r.get(6)?,
                setup_owner: r.get(7)?,
                codes_digest: r.get(8)?,
                mfa_required: r.get(9)?,
            })
        },
    )
    .optional()
}

pub(crate) fn delete_session(conn: &Connection, id_hash: &[u8; 32]) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM web_sessions WHERE id_hash = ?1",
        [&id_hash[..]],
    )?;
    Ok(())
}

/// Deletes every session of `user_id` but `keep` (credential changes sign out the others).
pub(crate) fn end_other_sessions(
    conn: &Connection,
    user_id: i64,
    keep: &[u8; 32],
) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM web_sessions WHERE user_id = ?1 AND id_hash <> ?2",
        params![user_id, &keep[..]],
    )
}

/// Marks (or unmarks) the session that began the user's MFA setup.
pub(crate) fn set_setup_owner(
    conn: &Connection,
    id_hash: &[u8; 32],
    owner: bool,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE web_sessions SET setup_owner = ?1 WHERE id_hash = ?2",
        params![owner, &id_hash[..]],
    )?;
    Ok(())
}

/// Remembers which recovery codes this session was shown (their SHA-256).
pub(crate) fn set_codes_digest(
    conn: &Connection,
    id_hash: &[u8; 32],
    digest: Option<&[u8]>,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE web_sessions SET codes_digest = ?1 WHERE id_hash = ?2",
        params![digest, &id_hash[..]],
    )?;
    Ok(())
}

pub(crate) fn set_mfa_required(
    conn: &Connection,
    user_id: i64,
    required: bool,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE web_users SET mfa_required = ?1 WHERE id = ?2",
        params![required, user_id],
    )?;
    Ok(())
}

/// Charges one password attempt to the account before its password is checked, in one
/// transaction: `Some(until)` when the account is paused (nothing is charged), else `None`
/// after counting the attempt as a failure and starting its delay, which a right password
/// then clears ([`clear_login_failures`]). Charging first is what keeps parallel guesses
/// from all reading the old count: the connection is shared, so these transactions run one
/// at a time, and the first attempt past the free ones pauses every later one. The first
/// [`FREE_LOGIN_FAILURES`] cost nothing; each further one starts a delay of
/// [`FIRST_LOGIN_DELAY`] seconds, doubling, at most [`MAX_LOGIN_DELAY`].
pub(crate) fn charge_login_attempt(
    conn: &mut Connection,
    user_id: i64,
    now: i64,
) -> rusqlite::Result<Option<i64>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (failures, blocked_until): (i64, i64) = tx.query_row(
        "SELECT failed_logins, login_blocked_until FROM web_users WHERE id = ?1",
        [user_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if blocked_until > now {
        return Ok(Some(blocked_until));
    }
    let failures = failures.saturating_add(1);
    let blocked_until = login_delay(failures).map_or(0, |d| now.saturating_add(d));
    tx.execute(
        "UPDATE web_users SET failed_logins = ?1, login_blocked_until = ?2 WHERE id = ?3",
        params![failures, blocked_until, user_id],
    )?;
    tx.commit()?;
    Ok(None)
}

/// The delay after the `failures`-th wrong password in a row, if any.
pub(crate) fn login_delay(failures: i64) -> Option<i64> {
    let over = failures - FREE_LOGIN_FAILURES;
    if over <= 0 {
        return None;
    }
    let doublings = u32::try_from(over - 1).unwrap_or(u32::MAX).min(20);
    Some((FIRST_LOGIN_DELAY << doublings).min(MAX_LOGIN_DELAY))
}

/// A right password: the count starts again.
pub(crate) fn clear_login_failures(conn: &Connection, user_id: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE web_users SET failed_logins = 0, login_blocked_until = 0
          WHERE id = ?1 AND (failed_logins <> 0 OR login_blocked_until <> 0)",
        [user_id],
    )?;
    Ok(())
}

pub(crate) fn purge_expired(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM web_sessions WHERE expires_at <= ?1", [now])
}

pub(crate) fn set_generation(
    conn: &Connection,
    id_hash: &[u8; 32],
    generation: Option<i64>,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE web_sessions SET mfa_generation = ?1 WHERE id_hash = ?2",
        params![generation, &id_hash[..]],
    )?;
    Ok(())
}

pub(crate) fn set_flash(
    conn: &Connection,
    id_hash: &[u8; 32],
    tone: &str,
    text: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE web_sessions SET flash_tone = ?1, flash = ?2 WHERE id_hash = ?3",
        params![tone, text, &id_hash[..]],
    )?;
    Ok(())
}

/// Reads and clears the one-time message of a session.
pub(crate) fn take_flash(
    conn: &mut Connection,
    id_hash: &[u8; 32],
) -> rusqlite::Result<Option<(String, String)>> {
    let tx = conn.transaction()?;
    let flash: Option<(Option<String>, Option<String>)> = tx
        .query_row(
            "SELECT flash_tone, flash FROM web_sessions WHERE id_hash = ?1",
            [&id_hash[..]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let out = match flash {
        Some((tone, Some(text))) => {
            tx.execute(
                "UPDATE web_sessions SET flash_tone = NULL, flash = NULL WHERE id_hash = ?1",
                [&id_hash[..]],
            )?;
            Some((tone.unwrap_or_default(), text))
        }
        _ => None,
    };
    tx.commit()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_from_before_gains_the_new_columns() {
        let path = std::env::temp_dir().join(format!(
            "totp-mfa-web-migrate-{}-{:?}.db",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&path);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE web_users (id INTEGER PRIMARY KEY AUTOINCREMENT,
                     email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
                     created_at INTEGER NOT NULL);
                 CREATE TABLE web_sessions (id_hash BLOB PRIMARY KEY, kind TEXT NOT NULL,
                     user_id INTEGER, csrf TEXT NOT NULL, ticket TEXT, mfa_generation INTEGER,
                     expires_at INTEGER NOT NULL, flash_tone TEXT, flash TEXT);
                 INSERT INTO web_users (email, password_hash, created_at)
                     VALUES ('old@example.com', 'x', 1);",
            )
            .unwrap();
        }
        let db = Db::open(&path).unwrap();
        let conn = db.conn.lock().unwrap();
        let user = find_user_by_email(&conn, "old@example.com")
            .unwrap()
            .unwrap();
        assert!(!user.mfa_required);
        let blocked: (i64, i64) = conn
            .query_row(
                "SELECT failed_logins, login_blocked_until FROM web_users WHERE id = ?1",
                [user.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(blocked, (0, 0));
        set_mfa_required(&conn, user.id, true).unwrap();
        drop(conn);
        drop(db);
        // Opening again changes nothing.
        let db = Db::open(&path).unwrap();
        let conn = db.conn.lock().unwrap();
        assert!(
            find_user_by_email(&conn, "old@example.com")
                .unwrap()
                .unwrap()
                .mfa_required
        );
        drop(conn);
        let _ = std::fs::remove_file(&path);
    }
}
