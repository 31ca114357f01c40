//! User identifiers.

use core::fmt;

use crate::error::Error;

/// The host's identifier for a user: 1 to 255 bytes without a NUL character, compared
/// byte for byte.
///
/// Use your user table's stable primary key, never what the person typed at login: the
/// crate cannot know that `Alice@Example.com` and `alice@example.com` are one person, and a
/// user id with no record means "no MFA" ([`LoginStart::NoMfa`](crate::LoginStart::NoMfa)).
/// Resolve the login name to the account first, check the password, then pass the account's
/// id.
///
/// ```
/// use totp_mfa::UserId;
/// let alice = UserId::new("42").unwrap(); // the account's primary key
/// assert_eq!(alice.as_str(), "42");
/// assert!(UserId::new("").is_err());
/// assert!(UserId::new("alice\0admin").is_err()); // PostgreSQL text cannot hold NUL
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    /// The longest id, in bytes.
    pub const MAX_LEN: usize = 255;

    /// Validates an id.
    ///
    /// # Errors
    /// [`Error::UserId`] when empty, longer than [`UserId::MAX_LEN`] bytes, or holding a NUL
    /// character (which PostgreSQL text cannot store and SQL tools cut off, so the same id
    /// would work on one store and never on another).
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        if id.is_empty() || id.len() > Self::MAX_LEN || id.contains('\0') {
            return Err(Error::UserId);
        }
        Ok(UserId(id))
    }

    /// The id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({:?})", self.0)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
