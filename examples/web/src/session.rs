//! Server-side sessions: a random id in an HttpOnly cookie, only its SHA-256 in the database,
//! a synchronizer CSRF token per session, and three kinds that grant different things.

use axum::http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_mfa::UserId;
use zeroize::Zeroizing;

use crate::app::AppError;
use crate::db::SessionRow;

/// A session before sign-in lives an hour (it only carries the CSRF token).
pub(crate) const ANON_TTL: i64 = 3600;
/// A signed-in session lives 12 hours at most (NIST SP 800-63B AAL2 reauthentication).
pub(crate) const USER_TTL: i64 = 12 * 3600;

/// An account as a session sees it.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub(crate) id: i64,
    pub(crate) email: String,
}

impl Account {
    /// The MFA user id: the account's stable primary key, never the typed email.
    pub(crate) fn mfa_id(&self) -> Result<UserId, AppError> {
        UserId::new(self.id.to_string()).map_err(|e| AppError::new(format!("user id: {e}")))
    }
}

/// What a session is allowed.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// Before sign-in: may post the sign-in and sign-up forms, nothing else.
    Anonymous,
    /// The password was right and the second factor is awaited: may answer the challenge
    /// whose ticket it holds (or cancel), nothing else.
    Pending { account: Account, ticket: String },
    /// Signed in.
    User {
        account: Account,
        mfa_generation: Option<u64>,
    },
}

/// A live session, loaded from the cookie.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id_hash: [u8; 32],
    pub(crate) kind: Kind,
    pub(crate) csrf: String,
    pub(crate) expires_at: i64,
    /// This session began the user's MFA setup in progress (only it may see and confirm it).
    pub(crate) setup_owner: bool,
    /// SHA-256 of the recovery codes last shown to this session.
    pub(crate) codes_digest: Option<Vec<u8>>,
    /// The account has had MFA on and not turned it off (see `web_users.mfa_required`).
    pub(crate) mfa_required: bool,
}

impl Session {
    pub(crate) fn from_row(id_hash: [u8; 32], row: SessionRow) -> Option<Session> {
        let account = match (row.user_id, row.email) {
            (Some(id), Some(email)) => Some(Account { id, email }),
            _ => None,
        };
        let kind = match (row.kind.as_str(), account, row.ticket) {
            ("anon", None, _) => Kind::Anonymous,
            ("pending", Some(account), Some(ticket)) => Kind::Pending { account, ticket },
            ("user", Some(account), _) => Kind::User {
                account,
                mfa_generation: row.mfa_generation.and_then(|g| u64::try_from(g).ok()),
            },
            _ => return None,
        };
        Some(Session {
            id_hash,
            kind,
            csrf: row.csrf,
            expires_at: row.expires_at,
            setup_owner: row.setup_owner,
            codes_digest: row.codes_digest,
            mfa_required: row.mfa_required,
        })
    }

    /// True when `submitted` is this session's CSRF token (compared in constant time).
    pub(crate) fn csrf_matches(&self, submitted: &str) -> bool {
        !submitted.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(submitted.as_bytes()))
    }
}

/// 256 random bits from the OS, base64url without padding (43 characters).
pub(crate) fn random_token() -> Result<Zeroizing<String>, AppError> {
    let mut raw = Zeroizing::new([0u8; 32]);
    getrandom::fill(raw.as_mut()).map_err(|e| AppError::new(format!("OS RNG: {e}")))?;
    Ok(Zeroizing::new(
        data_encoding::BASE64URL_NOPAD.encode(raw.as_ref()),
    ))
}

/// The digest a session keeps of the recovery codes it was shown: SHA-256 of the codes in
/// their canonical form, one per line.
pub(crate) fn codes_digest<'a>(codes: impl IntoIterator<Item = &'a str>) -> [u8; 32] {
    let mut h = Sha256::new();
    for c in codes {
        h.update(c.as_bytes());
        h.update(b"\n");
    }
    h.finalize().into()
}

/// The database key of a session id.
pub(crate) fn hash_id(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// The cookie's name: with TLS, the `__Host-` prefix pins it to this host, path `/`, Secure.
pub(crate) fn cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-sid" } else { "sid" }
}

/// The session id sent by the browser, if it has the shape of one.
pub(crate) fn cookie_id(headers: &HeaderMap, secure: bool) -> Option<String> {
    let name = cookie_name(secure);
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if k == name
                && v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Some(v.to_owned());
            }
        }
    }
    None
}

/// `Set-Cookie` for a new session: HttpOnly, SameSite=Lax, Path=/, and Secure behind TLS.
/// No Max-Age: the browser drops it when closed; the server ends it at `expires_at` anyway.
pub(crate) fn set_cookie(id: &str, secure: bool) -> HeaderValue {
    let value = format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Lax{}",
        cookie_name(secure),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("sid=; Max-Age=0"))
}
