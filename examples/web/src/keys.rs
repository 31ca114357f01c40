//! The key that seals the TOTP secrets in the database: from `TOTP_MFA_WEB_SEALING_KEY`
//! (64 hex characters), or else from a key file beside the database, created on first run.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::app::AppError;

/// A 256-bit sealing key. `Debug` shows no key material; the bytes are zeroized on drop.
#[derive(Clone)]
pub struct SealKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// Parses 64 hex characters (surrounding whitespace is ignored).
    ///
    /// # Errors
    /// A message saying what is wrong, never containing the text itself.
    pub fn from_hex(text: &str) -> Result<SealKey, String> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(format!(
                "expected 64 hex characters (32 bytes), found {} characters",
                text.chars().count()
            ));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        data_encoding::HEXLOWER_PERMISSIVE
            .decode_mut(text.as_bytes(), key.as_mut())
            .map_err(|_| "expected 64 hex characters (0-9, a-f)".to_owned())?;
        Ok(SealKey(key))
    }

    /// A new random key from the OS.
    ///
    /// # Errors
    /// When the OS random generator fails.
    pub fn random() -> Result<SealKey, String> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(|e| format!("OS RNG: {e}"))?;
        Ok(SealKey(key))
    }

    pub(crate) fn bytes(&self) -> [u8; 32] {
        *self.0
    }

    /// A value that tells keys apart without revealing them: SHA-256 of a fixed label and
    /// the key.
    pub(crate) fn check_value(&self) -> [u8; 32] {
        use sha2::{Digest as _, Sha256};
        let mut h = Sha256::new();
        h.update(b"totp-mfa-web sealing key check v1\0");
        h.update(self.0.as_ref());
        h.finalize().into()
    }

    fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(data_encoding::HEXLOWER.encode(self.0.as_ref()))
    }
}

/// The key file of a database: `<db path>.key`.
#[must_use]
pub fn key_path(db_path: &Path) -> PathBuf {
    let mut p = db_path.as_os_str().to_owned();
    p.push(".key");
    PathBuf::from(p)
}

/// The key in the file beside the database, created (mode 0600, 32 random bytes as hex) when
/// missing. A malformed file is an error, never replaced. A missing file next to a database
/// that already holds MFA records is an error too: a new key would not open them.
pub(crate) fn load_or_create(db_path: &Path) -> Result<SealKey, AppError> {
    let path = key_path(db_path);
    match read_key_file(&path) {
        Ok(key) => return Ok(key),
        Err(ReadError::Missing) => {}
        Err(ReadError::Other(e)) => return Err(AppError::new(e)),
    }
    if holds_mfa_records(db_path)? {
        return Err(AppError::new(format!(
            "the sealing key file {} is missing, but {} already holds MFA records that a new \
             key would not open: restore the key file (or set TOTP_MFA_WEB_SEALING_KEY); a \
             database from an older version of this example, with unsealed secrets, must be \
             deleted",
            path.display(),
            db_path.display()
        )));
    }
    let key = SealKey::random().map_err(AppError::new)?;
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    let mut file = match created {
        Ok(f) => f,
        // Another process created it first: use theirs.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return read_key_file(&path).map_err(|e| AppError::new(e.to_string()));
        }
        Err(e) => {
            return Err(AppError::new(format!(
                "creating the sealing key file {}: {e}",
                path.display()
            )));
        }
    };
    let mut text = key.to_hex();
    text.push('\n');
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| AppError::new(format!("writing {}: {e}", path.display())))?;
    eprintln!(
        "[totp-mfa-web] created the sealing key file {} (keep it, and back it up apart from the \
         database)",
        path.display()
    );
    Ok(key)
}

enum ReadError {
    Missing,
    Other(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Missing => f.write_str("the sealing key file is missing"),
            ReadError::Other(e) => f.write_str(e),
        }
    }
}

fn read_key_file(path: &Path) -> Result<SealKey, ReadError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => return Err(ReadError::Other(format!("reading {}: {e}", path.display()))),
    };
    if let Ok(meta) = file.metadata()
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "[totp-mfa-web] warning: the sealing key file {} is readable by other users \
             (chmod 600 it)",
            path.display()
        );
    }
    let mut text = Zeroizing::new(String::new());
    file.take(1024)
        .read_to_string(&mut text)
        .map_err(|e| ReadError::Other(format!("reading {}: {e}", path.display())))?;
    SealKey::from_hex(&text).map_err(|e| {
        ReadError::Other(format!(
            "the sealing key file {} is malformed: {e}",
            path.display()
        ))
    })
}

/// True when the database file exists and its MFA table has rows.
fn holds_mfa_records(db_path: &Path) -> Result<bool, AppError> {
    if !db_path.exists() {
        return Ok(false);
    }
    let check = || -> rusqlite::Result<bool> {
        let conn = rusqlite::Connection::open_with_flags(
            db_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let table: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'totp_mfa_records'",
            [],
            |r| r.get(0),
        )?;
        if table == 0 {
            return Ok(false);
        }
        conn.query_row("SELECT EXISTS (SELECT 1 FROM totp_mfa_records)", [], |r| {
            r.get(0)
        })
    };
    check().map_err(|e| AppError::new(format!("reading {}: {e}", db_path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_parse_and_malformed_ones_are_refused() {
        let k = SealKey::from_hex(&"0a".repeat(32)).unwrap();
        assert_eq!(k.bytes(), [10; 32]);
        assert_eq!(
            SealKey::from_hex(&format!(" {}\n", "AB".repeat(32)))
                .unwrap()
                .bytes(),
            [0xab; 32]
        );
        assert!(SealKey::from_hex("").is_err());
        assert!(SealKey::from_hex(&"0".repeat(63)).is_err());
        assert!(SealKey::from_hex(&"g".repeat(64)).is_err());
        assert_eq!(format!("{k:?}"), "SealKey(..)");
    }
}
