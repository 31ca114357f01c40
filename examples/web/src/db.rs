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
    created_at    INTEGER NOT NULL
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
    flash_tone     TEXT,
    flash          TEXT,
    CHECK ((kind = 'anon') = (user_id IS NULL)),
    CHECK ((kind = 'pending') = (ticket IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS web_sessions_expiry ON web_sessions (expires_at);
";

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
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
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

pub(crate) fn find_user_by_email(
    conn: &Connection,
    email: &str,
) -> rusqlite::Result<Option<UserRow>> {
    conn.query_row(
        "SELECT id, email, password_hash FROM web_users WHERE email = ?1",
        [email],
        |r| {
            Ok(UserRow {
                id: r.get(0)?,
                email: r.get(1)?,
                password_hash: r.get(2)?,
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
    Ok(())
}

pub(crate) fn load_session(
    conn: &Connection,
    id_hash: &[u8; 32],
) -> rusqlite::Result<Option<SessionRow>> {
    conn.query_row(
        "SELECT s.kind, s.user_id, u.email, s.csrf, s.ticket, s.mfa_generation, s.expires_at
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
